"""The notes source: the app's database, the source of truth, through SQLAlchemy.

Any SQLAlchemy URL works (SQLite by default, PostgreSQL in production); the plan maps our five
fields (id, user, content, created, updated) to the app's table and columns. Reads stream in
pages ordered by note id (keyset pagination: ``WHERE id > :last ORDER BY id LIMIT n``), so memory
stays flat however many notes there are, and an interrupted backfill resumes after the last id.

An app's table holds what its code wrote, not what our contract says: a row without an id or
a user (NULL or blank), without content (NULL), with a binary (BLOB) body or a date that is no
date is not a note. It is skipped and recorded in :attr:`NotesSource.skipped` with its id, the
column and the reason, for the command to report; it never becomes a note of the user
``"None"`` and never a traceback. Dates stored as ISO 8601 text (``2026-01-01``, SQLite's
``CURRENT_TIMESTAMP``) are read as dates (UTC when they name no zone).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from constellation.errors import SourceError, UnusableValue
from constellation.jobs import Job
from constellation.ledger.db import engine
from constellation.migration.values import epoch_ms
from constellation.plan import Plan

PAGE = 500
#: a column type whose values cannot be bounded in SQL (filtered in Python instead)
_UNKNOWN = object()


@dataclass(frozen=True)
class SkippedNote:
    """A row of the notes table that is not a usable note, and why."""

    #: the row's id as text ("NULL" when it has none)
    id: str
    #: the app's column that is wrong
    column: str
    reason: str

    def __str__(self) -> str:
        return f"note {self.id}: {self.column}: {self.reason}"


@dataclass(frozen=True)
class Note:
    """One note as the app stores it; times in epoch milliseconds."""

    id: str
    user_id: str
    content: str
    created: int
    updated: int

    @property
    def edited(self) -> int:
        """When the note last changed: the job's ``created`` (newer edits win)."""
        return max(self.created, self.updated)

    def job(self, version: int, *, force: bool = False) -> Job:
        """The note as a job; ``force`` replaces a stored record even if it is newer."""
        return Job(self.user_id, self.id, self.content, self.edited, version, force)


class NotesSource:
    """Read-only access to the app's notes table (plus ``add``, for demos and tests)."""

    def __init__(self, url: str, table: str, columns: Mapping[str, str]) -> None:
        self.url = url
        try:
            self.engine = engine(url)
            self.table = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        except sa.exc.NoSuchTableError as exc:
            raise SourceError(
                f"the notes source has no table {table!r}",
                "fix source.table in the plan (or run `constellation demo` to build a sample)",
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"cannot read the notes source: {exc.__class__.__name__}: {exc}",
                "check source.url in the plan",
            ) from exc
        missing = [c for c in columns.values() if c not in self.table.c]
        if missing:
            raise SourceError(
                f"table {table!r} has no column(s) {', '.join(missing)}",
                f"fix source.columns in the plan; the table has {', '.join(self.table.c.keys())}",
            )
        self.c = {field: self.table.c[column] for field, column in columns.items()}
        #: rows read so far that are not usable notes, by id (see the module doc)
        self.skipped: dict[str, SkippedNote] = {}

    @classmethod
    def from_plan(cls, plan: Plan) -> NotesSource:
        return cls(plan.source_url, plan.source.table, plan.source.columns)

    def _note(self, row: Any) -> Note | None:
        """The row as a note, or None (recorded in :attr:`skipped`) when it is not one."""
        m = row._mapping
        c = self.c
        raw_id = m[c["id"]]
        note_id = "NULL" if raw_id is None else str(raw_id)
        field = "id"
        try:
            if raw_id is None or not note_id.strip():
                raise UnusableValue("no id" if raw_id is None else "empty id")
            field = "user"
            user = m[c["user"]]
            if user is None or not str(user).strip():
                raise UnusableValue("no user (NULL)" if user is None else "empty user")
            field = "content"
            content = m[c["content"]]
            if content is None:
                raise UnusableValue("no content (NULL)")
            if isinstance(content, bytes | bytearray | memoryview):
                raise UnusableValue(f"binary (BLOB of {len(content):,} bytes), not text")
            if not isinstance(content, str):
                raise UnusableValue(f"not text: {type(content).__name__}")
            field = "created"
            created = epoch_ms(m[c["created"]])
            field = "updated"
            updated = epoch_ms(m[c["updated"]])
        except UnusableValue as why:
            column = c[field].key
            self.skipped[note_id] = SkippedNote(note_id, column, str(why))
            return None
        return Note(note_id, str(user), content, created, updated)

    def _select(self) -> sa.Select[Any]:
        return sa.select(*self.c.values())

    def _run(self, query: sa.Select[Any]) -> list[Note]:
        return [note for note in self._read(query)[0] if note is not None]

    def _read(self, query: sa.Select[Any]) -> tuple[list[Note | None], Any]:
        """The rows of ``query`` as notes (None for a skipped row) and the last row's id."""
        try:
            with self.engine.connect() as db:
                rows = list(db.execute(query))
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"reading notes failed: {exc}", "check source.url in the plan"
            ) from exc
        last = rows[-1]._mapping[self.c["id"]] if rows else None
        return [self._note(row) for row in rows], last

    def count(self, user_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(self.table)
        if user_id is not None:
            query = query.where(self.c["user"] == user_id)
        try:
            with self.engine.connect() as db:
                return int(db.execute(query).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            # Phases count before they change the state: a source that cannot be read stops
            # them here, with nothing changed.
            raise SourceError(
                f"reading notes failed: {exc}", "check source.url in the plan"
            ) from exc

    def iter_notes(
        self,
        *,
        after: str | None = None,
        user_id: str | None = None,
        page: int = PAGE,
        where: Any = None,
    ) -> Iterator[Note]:
        """Every note (of one user if given, matching ``where`` if given) with id greater than
        ``after``, in id order."""
        last = after
        while True:
            query = self._select().order_by(self.c["id"]).limit(page)
            if last is not None:
                query = query.where(self.c["id"] > self._typed_id(last))
            if user_id is not None:
                query = query.where(self.c["user"] == user_id)
            if where is not None:
                query = query.where(where)
            notes, last_id = self._read(query)
            yield from (note for note in notes if note is not None)
            if len(notes) < page or last_id is None:
                return
            last = str(last_id)  # the page's last row, usable or not

    def changed_since(self, since_ms: int | None, *, page: int = PAGE) -> Iterator[Note]:
        """Every note created or edited at or after ``since_ms`` (epoch ms), in id order;
        every note when ``since_ms`` is None. The bound is given in the columns' own type
        (a timestamp, epoch seconds or epoch milliseconds), so the database filters."""
        if since_ms is None:
            yield from self.iter_notes(page=page)
            return
        bounds = [self._time_bound(field, since_ms) for field in ("created", "updated")]
        if any(bound is _UNKNOWN for bound in bounds):  # a column type we cannot bound
            yield from (n for n in self.iter_notes(page=page) if n.edited >= since_ms)
            return
        where = sa.or_(
            *(self.c[f] >= b for f, b in zip(("created", "updated"), bounds, strict=True))
        )
        yield from self.iter_notes(page=page, where=where)

    def _time_bound(self, field: str, since_ms: int) -> Any:
        column = self.c[field]
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            return _UNKNOWN
        if python_type is datetime:
            if getattr(column.type, "timezone", False):
                return datetime.fromtimestamp(since_ms / 1000, tz=UTC)
            return datetime.fromtimestamp(
                since_ms / 1000
            )  # naive: local time, as epoch_ms reads it
        if python_type in (int, float, Decimal):
            with self.engine.connect() as db:
                largest = db.execute(sa.select(sa.func.max(column))).scalar()
            # the same heuristic as epoch_ms: values below 10^11 are seconds
            seconds = largest is not None and float(largest) < 1e11
            return since_ms / 1000 if seconds else since_ms
        return _UNKNOWN

    def existing(self, note_ids: Sequence[str]) -> set[str]:
        """Which of ``note_ids`` the source still holds."""
        found: set[str] = set()
        ids = list(note_ids)
        for start in range(0, len(ids), PAGE):
            chunk = [self._typed_id(i) for i in ids[start : start + PAGE]]
            query = sa.select(self.c["id"]).where(self.c["id"].in_(chunk))
            try:
                with self.engine.connect() as db:
                    found.update(str(row[0]) for row in db.execute(query))
            except sa.exc.SQLAlchemyError as exc:
                raise SourceError(
                    f"reading notes failed: {exc}", "check source.url in the plan"
                ) from exc
        return found

    def current(self, note_ids: Sequence[str]) -> dict[str, Note]:
        """The notes of ``note_ids`` as the source holds them now, by id (deleted ones absent)."""
        found: dict[str, Note] = {}
        ids = list(note_ids)
        for start in range(0, len(ids), PAGE):
            chunk = [self._typed_id(i) for i in ids[start : start + PAGE]]
            found.update(
                (n.id, n) for n in self._run(self._select().where(self.c["id"].in_(chunk)))
            )
        return found

    def _typed_id(self, value: str) -> Any:
        # Compare like with like: an integer id column needs an integer bound.
        python_type = getattr(self.c["id"].type, "python_type", str)
        try:
            return python_type(value)
        except (TypeError, ValueError):
            return value

    def get(self, user_id: str, note_id: str) -> Note | None:
        query = self._select().where(
            self.c["user"] == user_id, self.c["id"] == self._typed_id(note_id)
        )
        notes = self._run(query)
        return notes[0] if notes else None

    def owners(self, note_id: str) -> list[str]:
        """The users who hold a note of this id (an id is unique per user, not across them)."""
        user = self.c["user"]
        query = (
            sa.select(user).where(self.c["id"] == self._typed_id(note_id)).distinct().order_by(user)
        )
        try:
            with self.engine.connect() as db:
                return [str(row[0]) for row in db.execute(query) if row[0] is not None]
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"reading notes failed: {exc}", "check source.url in the plan"
            ) from exc

    def notes_per_user(self, limit: int | None = None) -> dict[str, int]:
        """Users and their notes, the most notes first (then by user id); ``limit`` users at
        most. A NULL or blank user is no user."""
        user = self.c["user"]
        notes = sa.func.count().label("notes")
        query = (
            sa.select(user, notes)
            .where(user.is_not(None), sa.func.length(sa.func.trim(user)) > 0)
            .group_by(user)
            .order_by(notes.desc(), user)
            .limit(limit)
        )
        try:
            with self.engine.connect() as db:
                return {str(u): int(n) for u, n in db.execute(query)}
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"reading notes failed: {exc}", "check source.url in the plan"
            ) from exc

    def users(self) -> list[str]:
        """Every user who has notes (a NULL or blank user is no user)."""
        user = self.c["user"]
        with self.engine.connect() as db:
            rows = db.execute(sa.select(user).where(user.is_not(None)).distinct().order_by(user))
            return [str(r[0]) for r in rows if str(r[0]).strip()]

    def sample(self, size: int, seed: int = 0) -> list[Note]:
        """``size`` notes picked at random (reproducibly): reservoir sampling over a streamed
        id cursor, so memory holds ``size`` ids, not the whole table."""
        rng = random.Random(seed)
        chosen: list[Any] = []
        with self.engine.connect() as db:
            ids = db.execution_options(stream_results=True, yield_per=PAGE).execute(
                sa.select(self.c["id"]).order_by(self.c["id"])
            )
            for seen, (note_id,) in enumerate(ids):
                if seen < size:
                    chosen.append(note_id)
                else:
                    slot = rng.randint(0, seen)
                    if slot < size:
                        chosen[slot] = note_id
        notes: list[Note] = []
        for start in range(0, len(chosen), PAGE):
            notes += self._run(self._select().where(self.c["id"].in_(chosen[start : start + PAGE])))
        return sorted(notes, key=lambda note: note.id)

    def close(self) -> None:
        self.engine.dispose()


def create_notes_table(url: str, table: str = "notes") -> None:
    """Create an empty notes table with the default column names (demos and tests)."""
    created = engine(url)
    sa.Table(
        table,
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    ).create(created, checkfirst=True)
    created.dispose()


def insert_notes(source: NotesSource, notes: Sequence[Note]) -> None:
    """Insert or replace notes (the app's own writes, in demos and tests)."""
    c = source.c
    rows = [
        {
            c["id"].key: n.id,
            c["user"].key: n.user_id,
            c["content"].key: n.content,
            c["created"].key: n.created,
            c["updated"].key: n.updated,
        }
        for n in notes
    ]
    with source.engine.begin() as db:
        db.execute(sa.delete(source.table).where(c["id"].in_([n.id for n in notes])))
        db.execute(sa.insert(source.table), rows)


def delete_notes(source: NotesSource, note_ids: Sequence[str]) -> None:
    """Delete notes by id (the app's own deletes, e.g. an importer's removed file)."""
    if not note_ids:
        return
    with source.engine.begin() as db:
        db.execute(sa.delete(source.table).where(source.c["id"].in_(list(note_ids))))
