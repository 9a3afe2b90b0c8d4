"""The failure log: every failed job attempt the workers recorded, beside the migration state.

``recover`` reads it to say, for each affected note, what went wrong and when. It is in the
state database so workers on several machines write to one log.
"""

from __future__ import annotations

import sqlalchemy as sa

from constellation.ledger.db import PlanLog
from constellation.plan import Plan
from constellation.worker.events import JobFailure

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


class FailureLog(PlanLog[JobFailure]):
    """A :class:`~constellation.worker.events.FailureSink` in SQL: ``since`` reads it back."""

    def __init__(self, url: str, plan: str, environment: str) -> None:
        super().__init__(url, plan, environment, _failures, JobFailure)

    @classmethod
    def for_plan(cls, plan: Plan) -> FailureLog:
        return cls(plan.state_url, plan.name, plan.environment)

    def failed(self, failure: JobFailure) -> None:
        self.append(failure)
