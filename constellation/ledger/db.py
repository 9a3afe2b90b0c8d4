"""SQLAlchemy for the migration's own tables: engines, race-free creation, append-only logs."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import sqlalchemy as sa

from constellation.damage import is_damage
from constellation.errors import AdapterError, DatabaseUnreachable
from constellation.masking import masked

__all__ = ["LOCKING", "PlanLog", "create_tables", "engine", "masked"]

#: execution options of a connection whose transaction takes the write lock when it begins,
#: not at its first write (SQLite's ``BEGIN IMMEDIATE``; elsewhere ``SELECT ... FOR UPDATE``
#: does it): a read-check-write must hold the lock from its read on
LOCKING = {"constellation_locking": True}


def engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and real transactions, since
    the worker, the router and operator commands read and write the same file from several
    processes.

    ``postgresql://`` (and ``postgres://``) URLs use psycopg 3, the ``postgres`` extra, as
    ``postgresql+psycopg://`` does; connections are checked before use, so a restarted server
    costs no failed call. Every PostgreSQL connection opens within ``PG_CONNECT_TIMEOUT``
    seconds and every statement ends within ``PG_STATEMENT_TIMEOUT_MS``: a hung server fails
    the command, never holds it.
    """
    url = postgres_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        created = sa.create_engine(
            url,
            future=True,
            pool_pre_ping=not url.startswith("sqlite"),
            connect_args=_time_limits(url),
        )
    except ModuleNotFoundError as exc:
        raise AdapterError(
            f"no database driver for {masked(url)}: {exc}",
            "install the PostgreSQL driver: pip install -e '.[postgres]'",
        ) from exc
    if created.dialect.name == "sqlite":

        @sa.event.listens_for(created, "connect")
        def _connect(connection: Any, _record: Any) -> None:
            # SQLAlchemy's documented recipe for pysqlite (dialects/sqlite, "Enabling
            # Non-Legacy SQLite Transactional Modes"): the driver would only BEGIN before the
            # first write, so a read and the write it decides would not be one transaction.
            # It begins nothing now; _begin below does.
            connection.isolation_level = None
            cursor = connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @sa.event.listens_for(created, "begin")
        def _begin(connection: sa.Connection) -> None:
            locking = connection.get_execution_options().get("constellation_locking")
            connection.exec_driver_sql("BEGIN IMMEDIATE" if locking else "BEGIN")

    @sa.event.listens_for(created, "handle_error")
    def _unreachable(context: sa.engine.ExceptionContext) -> None:
        # A failure while connecting (no connection yet) or a lost connection is the server
        # (or the file) being out of reach, exit 4; anything else stays the caller's error.
        # A damaged file is not out of reach: the callers name it (DamagedFile, exit 1).
        if is_damage(context.original_exception):
            return
        if context.connection is None or context.is_disconnect:
            raise DatabaseUnreachable(
                f"cannot connect to the database at {masked(url)}: {context.original_exception}",
                "check that the database is up and reachable, and the URL in the plan "
                "(source.url, migration.state_url)",
            ) from context.original_exception

    return created


#: seconds a PostgreSQL connection may take to open (libpq's ``connect_timeout``)
PG_CONNECT_TIMEOUT = 10
#: milliseconds one PostgreSQL statement may run, lock waits included (``statement_timeout``):
#: our statements are pages of 500 rows and single-row state changes, so a statement still
#: running after a minute is stuck (a hung server, a lock never released), not busy
PG_STATEMENT_TIMEOUT_MS = 60_000


def _time_limits(url: str) -> dict[str, Any]:
    """libpq's limits for a PostgreSQL URL (the URL's own ``connect_timeout`` or ``options``
    win); none for other databases (SQLite waits on its busy timeout)."""
    if not url.startswith("postgresql"):
        return {}
    query = sa.engine.make_url(url).query
    limits: dict[str, Any] = {}
    if "connect_timeout" not in query:
        limits["connect_timeout"] = PG_CONNECT_TIMEOUT
    if "options" not in query:
        limits["options"] = f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
    return limits


def postgres_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs with the psycopg (3) driver named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Create the tables and indexes of ``metadata`` that do not exist yet.

    Safe when several processes start at once on a fresh database (workers, routers):
    ``CREATE ... IF NOT EXISTS`` in one transaction, instead of SQLAlchemy's look-then-create.
    """
    with engine.begin() as db:
        if engine.dialect.name == "postgresql":
            # PostgreSQL's CREATE ... IF NOT EXISTS races between sessions (a unique violation
            # in its catalog): one session at a time, by a lock held until the commit.
            db.execute(sa.text("SELECT pg_advisory_xact_lock(7253470521)"))
        for table in metadata.sorted_tables:
            db.execute(sa.schema.CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                db.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Add the nullable columns of ``table`` that a table created by an earlier version
    lacks (``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it was). Several
    processes may start at once: a column another one added meanwhile is fine."""
    for column in table.columns:
        if not column.nullable or column.name in _columns(engine, table):
            continue
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as db:
                db.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
        except sa.exc.SQLAlchemyError:
            if column.name not in _columns(engine, table):
                raise


def _columns(engine: sa.Engine, table: sa.Table) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table.name)}


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = TypeVar("Row", bound="DataclassInstance")


class PlanLog(Generic[Row]):
    """An append-only table of one plan and environment, each row one dataclass ``Row``.

    The comparison log and the failure log are such tables, beside the migration state.
    """

    def __init__(
        self, url: str, plan: str, environment: str, table: sa.Table, row: type[Row]
    ) -> None:
        self.plan = plan
        self.environment = environment
        self._table = table
        self._row = row
        self._engine = engine(url)
        create_tables(self._engine, table.metadata)

    def append(self, item: Row) -> None:
        # Rows quote errors, and errors quote URLs: nothing stored keeps a password.
        values = {k: masked(v) if isinstance(v, str) else v for k, v in asdict(item).items()}
        with self._engine.begin() as db:
            db.execute(
                sa.insert(self._table).values(
                    plan=self.plan, environment=self.environment, **values
                )
            )

    def since(self, start: float = 0.0) -> list[Row]:
        """Rows recorded at or after ``start``, oldest first."""
        t = self._table
        columns = [t.c[f.name] for f in fields(self._row)]
        query = (
            sa.select(*columns)
            .where(t.c.plan == self.plan, t.c.environment == self.environment, t.c.at >= start)
            .order_by(t.c.id)
        )
        with self._engine.connect() as db:
            return [self._row(**row._mapping) for row in db.execute(query)]

    def close(self) -> None:
        self._engine.dispose()
