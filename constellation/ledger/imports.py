"""The import ledger: what each import source last sent, beside the migration state.

``constellation import git|folder|notion`` sends only what changed since the last import of
the same source. For that it keeps, per source (a stable id from its kind, name and user), the
last marker (a git commit) and one row per item: the note id it became, the item's content
fingerprint and the ``created`` it was sent with. The tables live in the migration's database
(``migration.state_url``), so every machine that imports sees the same ledger.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from constellation.errors import StateError
from constellation.ledger.db import create_tables, engine, masked
from constellation.plan import Plan

_metadata = sa.MetaData()
_sources = sa.Table(
    "import_source",
    _metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("user_id", sa.String(500), nullable=False),
    sa.Column("marker", sa.String(200)),
    sa.Column("imported_at", sa.Float, nullable=False),
)
_items = sa.Table(
    "import_item",
    _metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    # the item's key can be a long path: rows are keyed by its digest, the key kept beside it
    sa.Column("key_digest", sa.String(64), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    #: None: the item was seen but is not a note (not text, too large)
    sa.Column("note_id", sa.String(64)),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class ImportedItem:
    """One item of a source as the last import left it."""

    key: str
    note_id: str | None
    fingerprint: str
    #: the ``created`` (epoch ms) its note was last sent with
    created: int


@dataclass(frozen=True)
class SourceRecord:
    source: str
    kind: str
    name: str
    user_id: str
    marker: str | None
    imported_at: float


class ImportLedger:
    """The import tables of one plan and environment."""

    def __init__(
        self, url: str, plan: str, environment: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.plan = plan
        self.environment = environment
        self.clock = clock
        try:
            self._engine = engine(url)
            create_tables(self._engine, _metadata)
        except sa.exc.SQLAlchemyError as exc:
            raise StateError(
                f"cannot open the import ledger at {masked(url)}: {exc.__class__.__name__}",
                "check migration.state_url in the plan (or that the data folder is writable)",
            ) from exc

    @classmethod
    def for_plan(cls, plan: Plan) -> ImportLedger:
        return cls(plan.state_url, plan.name, plan.environment)

    def _scope(self, table: sa.Table, source: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            table.c.plan == self.plan,
            table.c.environment == self.environment,
            table.c.source == source,
        )

    def source(self, source: str) -> SourceRecord | None:
        """The source's last import, or None before the first."""
        with self._engine.connect() as db:
            row = db.execute(
                sa.select(
                    _sources.c.source,
                    _sources.c.kind,
                    _sources.c.name,
                    _sources.c.user_id,
                    _sources.c.marker,
                    _sources.c.imported_at,
                ).where(self._scope(_sources, source))
            ).first()
        return SourceRecord(*row) if row else None

    def items(self, source: str) -> dict[str, ImportedItem]:
        """Every item the source's imports recorded, by key."""
        t = _items
        with self._engine.connect() as db:
            rows = db.execute(
                sa.select(t.c.key, t.c.note_id, t.c.fingerprint, t.c.created).where(
                    self._scope(t, source)
                )
            ).all()
        return {row.key: ImportedItem(*row) for row in rows}

    def record(self, source: str, items: Sequence[ImportedItem]) -> None:
        """Record what was just sent (or seen and skipped), replacing earlier rows."""
        if not items:
            return
        with self._engine.begin() as db:
            digests = [_digest(item.key) for item in items]
            db.execute(
                sa.delete(_items).where(
                    self._scope(_items, source), _items.c.key_digest.in_(digests)
                )
            )
            db.execute(
                sa.insert(_items),
                [
                    {
                        "plan": self.plan,
                        "environment": self.environment,
                        "source": source,
                        "key_digest": digest,
                        "key": item.key,
                        "note_id": item.note_id,
                        "fingerprint": item.fingerprint,
                        "created": item.created,
                    }
                    for digest, item in zip(digests, items, strict=True)
                ],
            )

    def forget(self, source: str, keys: Sequence[str]) -> None:
        """Drop items that are gone from the source (their removal was sent)."""
        if not keys:
            return
        with self._engine.begin() as db:
            db.execute(
                sa.delete(_items).where(
                    self._scope(_items, source),
                    _items.c.key_digest.in_([_digest(key) for key in keys]),
                )
            )

    def finish(
        self, source: str, *, kind: str, name: str, user_id: str, marker: str | None
    ) -> SourceRecord:
        """Record that an import of the source completed (with its marker, e.g. a commit)."""
        record = SourceRecord(source, kind, name, user_id, marker, self.clock())
        with self._engine.begin() as db:
            db.execute(sa.delete(_sources).where(self._scope(_sources, source)))
            db.execute(
                sa.insert(_sources).values(
                    plan=self.plan,
                    environment=self.environment,
                    source=source,
                    kind=kind,
                    name=name,
                    user_id=user_id,
                    marker=marker,
                    imported_at=record.imported_at,
                )
            )
        return record

    def close(self) -> None:
        self._engine.dispose()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
