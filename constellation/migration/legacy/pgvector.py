"""The old system as an app keeps it in PostgreSQL: a table with a pgvector column.

The plan names the table and its columns (``legacy.layout``: ``table``, ``id_column`` (the note
id, unique), ``user_column``, ``vector_column``) and the database (``legacy.url``). Searches
order by cosine distance (``<=>``) within the user's rows; writes are the app's inline
``INSERT ... ON CONFLICT (id) DO UPDATE``; an emptied note's row is deleted. Vectors travel as
pgvector's text form (``[0.1,0.2,...]``), so no driver extension is needed. Other columns of
the table are never written.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from constellation.embedders.memo import remembered
from constellation.errors import LegacyError
from constellation.index.port import StoredRecord
from constellation.ledger.db import engine, masked
from constellation.migration.legacy.layout import AppText
from constellation.migration.legacy.port import LayoutCheck, NoteKey
from constellation.migration.source import Note
from constellation.plan import Plan
from constellation.query import SearchResult, require_user
from constellation.services import Services


class Vector(sa.types.UserDefinedType[list[float]]):
    """pgvector's ``vector`` type, bound and read in its text form (psycopg returns a type
    it has no loader for as text)."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "vector"

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: Sequence[float] | None) -> str | None:
            return None if value is None else "[" + ",".join(repr(float(x)) for x in value) + "]"

        return process

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.cast(bindvalue, self)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        def process(value: str | None) -> list[float] | None:
            return None if value is None else [float(x) for x in value.strip("[]").split(",")]

        return process


class PgvectorLegacy:
    """The app's embeddings table in PostgreSQL, through SQLAlchemy (psycopg 3)."""

    def __init__(self, plan: Plan, services: Services, *, write: bool = True) -> None:
        config = plan.legacy
        layout = config.layout
        if layout is None or config.url_value is None:
            raise LegacyError("the pgvector old system needs legacy.url and legacy.layout")
        self.version = config.model_version
        self.model = plan.model(self.version).name
        self.embedder = services.embedder(self.version)
        self.text = AppText.from_config(config)
        self.url = config.url_value
        self.name = layout.table
        schema, _, table = layout.table.rpartition(".")
        self.schema = schema or None
        self.columns = (layout.id_column, layout.user_column, layout.vector_column)
        self.table = sa.Table(
            table,
            sa.MetaData(),
            sa.Column(layout.id_column, sa.Text, primary_key=True),
            sa.Column(layout.user_column, sa.Text),
            sa.Column(layout.vector_column, Vector()),
            schema=self.schema,
        )
        self.id, self.user, self.vector = (self.table.c[c] for c in self.columns)
        self.engine = engine(self.url)
        self._checked = False

    def _check(self) -> None:
        """The table and its three columns exist (once, on first use)."""
        if self._checked:
            return
        try:
            with warnings.catch_warnings():  # SQLAlchemy does not know pgvector's type
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                found = sa.inspect(self.engine).get_columns(self.table.name, schema=self.schema)
        except sa.exc.NoSuchTableError:
            raise LegacyError(
                f"the app's database {masked(self.url)} has no table {self.name!r}",
                "fix legacy.layout.table in the plan",
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._error("open the table", exc) from exc
        names = {column["name"] for column in found}
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise LegacyError(
                f"table {self.name!r} has no column(s) {', '.join(missing)}",
                f"fix legacy.layout in the plan; the table has {', '.join(sorted(names))}",
            )
        self._checked = True

    def _error(self, doing: str, exc: Exception) -> LegacyError:
        return LegacyError(
            f"the old system (pgvector table {self.name}) failed to {doing}: "
            f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            "check legacy.url and legacy.layout in the plan",
        )

    def _run(self, doing: str, statement: Any, *, write: bool = False) -> list[Any]:
        self._check()
        try:
            with self.engine.begin() if write else self.engine.connect() as db:
                result = db.execute(statement)
                return list(result) if result.returns_rows else []
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(doing, exc) from exc

    # writes --------------------------------------------------------------------------------
    def write(self, note: Note) -> None:
        self.write_many([note])

    def write_many(self, notes: Sequence[Note]) -> None:
        """Embed in the caller and upsert the rows: the app's old way."""
        latest = list({n.id: n for n in notes}.values())
        texts = self.text.prepare([n.content for n in latest], self.embedder)
        self.delete_many([(n.user_id, n.id) for n, t in zip(latest, texts, strict=True) if not t])
        keep = [(n, t) for n, t in zip(latest, texts, strict=True) if t]
        if not keep:
            return
        vectors = self.embedder.embed([t for _, t in keep])
        rows = [
            {self.id.key: n.id, self.user.key: n.user_id, self.vector.key: list(v)}
            for (n, _), v in zip(keep, vectors, strict=True)
        ]
        insert = postgresql.insert(self.table).values(rows)
        upsert = insert.on_conflict_do_update(
            index_elements=[self.id],
            set_={
                self.user.key: insert.excluded[self.user.key],
                self.vector.key: insert.excluded[self.vector.key],
            },
        )
        self._run(f"write {len(rows)} notes", upsert, write=True)

    def delete_many(self, keys: Sequence[NoteKey]) -> None:
        if keys:
            ids = [note for _, note in keys]
            self._run("remove notes", sa.delete(self.table).where(self.id.in_(ids)), write=True)

    # reads ---------------------------------------------------------------------------------
    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's rows nearest to ``text`` by cosine distance."""
        require_user(user_id)
        (prepared,) = self.text.prepare([text], self.embedder)
        if not prepared:
            return []
        query_vector = list(remembered(self.embedder, [prepared])[0])
        cosine = self.vector.op("<=>", return_type=sa.Float)
        distance = cosine(sa.bindparam("q", query_vector, type_=Vector()))
        query = (
            sa.select(self.id, self.user, distance.label("distance"))
            .where(self.user == user_id, self.vector.is_not(None))
            .order_by(distance)
            .limit(top_k)
        )
        rows = self._run("search", query)
        return [
            SearchResult(
                note_id=str(r[0]), score=1.0 - float(r[2]), created=0, version=self.version
            )
            for r in rows
            if r[1] == user_id
        ]

    def count(self) -> int:
        return int(
            self._run("count rows", sa.select(sa.func.count()).select_from(self.table))[0][0]
        )

    def scan(self, batch_size: int = 500) -> Iterator[StoredRecord]:
        """Every row with its vector, in id order (keyset pages: memory stays flat)."""
        for row in self._pages(batch_size, vectors=True):
            yield StoredRecord(str(row[0]), {self.user.key: str(row[1])}, row[2])

    def _pages(self, batch_size: int, vectors: bool) -> Iterator[Any]:
        columns = [self.id, self.user, *([self.vector] if vectors else [])]
        last: str | None = None
        while True:
            query = sa.select(*columns).order_by(self.id).limit(batch_size)
            if last is not None:
                query = query.where(self.id > last)
            rows = self._run("read rows", query)
            yield from rows
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def get(self, user_id: str, note_id: str) -> StoredRecord | None:
        query = sa.select(self.id, self.user, self.vector).where(
            self.id == note_id, self.user == user_id
        )
        rows = self._run("read a row", query)
        return (
            StoredRecord(str(rows[0][0]), {self.user.key: str(rows[0][1])}, rows[0][2])
            if rows
            else None
        )

    def note_keys(self, batch_size: int = 500) -> Iterator[NoteKey]:
        for row in self._pages(batch_size, vectors=False):
            if row[1]:
                yield str(row[1]), str(row[0])

    def check_layout(self, sample: int = 20) -> LayoutCheck:
        """The table and columns exist, and sampled rows have a user and a vector."""
        self._check()
        rows = self._run(
            "read rows", sa.select(self.id, self.user, self.vector.is_(None)).limit(sample)
        )
        problems = [
            f"row {r[0]!r} has no {self.user.key}"
            if not r[1]
            else f"row {r[0]!r} has no {self.vector.key}"
            for r in rows
            if not r[1] or r[2]
        ]
        layout = f"table {self.name} ({', '.join(self.columns)})"
        return LayoutCheck(len(rows), layout, tuple(problems))

    def close(self) -> None:
        self.engine.dispose()
