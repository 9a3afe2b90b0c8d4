"""SQLAlchemy engines for the migration's own tables (state, journal, comparison log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa


def engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout, since the worker, the
    router and operator commands read and write the same file from several processes."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    created = sa.create_engine(url, future=True)
    if created.dialect.name == "sqlite":

        @sa.event.listens_for(created, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return created


def create_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Create the tables and indexes of ``metadata`` that do not exist yet.

    Safe when several processes start at once on a fresh database (workers, routers):
    ``CREATE ... IF NOT EXISTS`` in one transaction, instead of SQLAlchemy's look-then-create.
    """
    with engine.begin() as db:
        for table in metadata.sorted_tables:
            db.execute(sa.schema.CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                db.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def masked(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url
