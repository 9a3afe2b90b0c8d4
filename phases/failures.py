"""The failure log: every failed job attempt the workers recorded, beside the migration state.

``recover`` reads it to say, for each affected note, what went wrong and when. It is in the
state database so workers on several machines write to one log.
"""

from __future__ import annotations

import sqlalchemy as sa

from constellation.plan import Plan
from constellation.worker.events import JobFailure
from phases.db import create_tables, engine

_metadata = sa.MetaData()
_failures = sa.Table(
    "service_failure",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan", sa.String(200), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("error_type", sa.String(100), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("dead_lettered", sa.Boolean, nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("receive_count", sa.Integer, nullable=False),
    sa.Column("user_id", sa.String(500)),
    sa.Column("note_id", sa.String(500)),
    sa.Column("version", sa.Integer),
)


class FailureLog:
    """A :class:`~constellation.worker.events.FailureSink` in SQL."""

    def __init__(self, url: str, plan: str, environment: str) -> None:
        self.plan = plan
        self.environment = environment
        self._engine = engine(url)
        create_tables(self._engine, _metadata)

    @classmethod
    def for_plan(cls, plan: Plan) -> FailureLog:
        return cls(plan.state_url, plan.name, plan.environment)

    def failed(self, failure: JobFailure) -> None:
        with self._engine.begin() as db:
            db.execute(
                sa.insert(_failures).values(
                    plan=self.plan, environment=self.environment, **failure.__dict__
                )
            )

    def since(self, start: float = 0.0) -> list[JobFailure]:
        """Failures recorded at or after ``start``, oldest first."""
        columns = [_failures.c[name] for name in JobFailure.__dataclass_fields__]
        query = (
            sa.select(*columns)
            .where(
                _failures.c.plan == self.plan,
                _failures.c.environment == self.environment,
                _failures.c.at >= start,
            )
            .order_by(_failures.c.id)
        )
        with self._engine.connect() as db:
            return [JobFailure(**row._mapping) for row in db.execute(query)]

    def close(self) -> None:
        self._engine.dispose()
