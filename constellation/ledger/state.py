"""Migration state and its journal, in any SQL database SQLAlchemy reaches.

One record per plan name and environment holds the phase, the write mode, the read-traffic
share, the consumer switch, the model versions and free-form notes. Every change goes through
:meth:`StateStore.transition`: inside one database transaction that holds the record's write
lock it reads the record, lets the caller decide on the state as it is at that moment (refuse
by raising, or return the fields to change), merges the note keys the caller sets into the
stored notes, writes the record and a journal entry (time, command, reason, before, after).
So two commands at once never lose each other's change, and a decision is never made on a
state that is no longer the one written. ``status``, crash recovery and rollback all read the
same history. The default is a SQLite file in the plan's data folder; production points
``migration.state_url`` at a database every app machine can read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from constellation.damage import detail as damage_detail
from constellation.damage import is_damage, sqlite_file
from constellation.errors import DamagedFile, StateError
from constellation.ledger.db import LOCKING, add_missing_columns, create_tables, engine, masked
from constellation.ledger.journal import JournalEntry, current_actor
from constellation.ledger.notes import Notes, from_stored, merged
from constellation.plan import Plan
from constellation.timefields import EPOCH_SECONDS

WriteMode = Literal["old", "dual", "new"]
#: where a phase stands: running it, its exit gate passed, finished (phase 4), or rolled back
PhaseStatus = Literal["not_started", "running", "passed", "complete", "rolled_back"]

_metadata = sa.MetaData()
_state = sa.Table(
    "migration_state",
    _metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
_journal = sa.Table(
    "migration_journal",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan", sa.String(200), nullable=False, index=True),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("command", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("before", sa.Text, nullable=False),
    sa.Column("after", sa.Text, nullable=False),
    # who made the change (added later: journals written before it have none)
    sa.Column("who", sa.String(200)),
)
_cursors = sa.Table(
    "migration_cursor",
    _metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class MigrationState:
    """Where one plan's migration stands (see DESIGN.md, "The migration")."""

    phase: int = 0
    status: PhaseStatus = "not_started"
    write_mode: WriteMode = "old"
    #: share of users whose searches the new system serves (sticky per user)
    read_traffic: float = 0.0
    consumer_enabled: bool = True
    #: model versions producers write (a second one while a model upgrade runs)
    write_versions: tuple[int, ...] = (1,)
    #: model versions searches read, newest first (two while a model upgrade is being checked)
    read_versions: tuple[int, ...] = (1,)
    #: the traffic step of phase 2 last reached (index into the plan's steps; -1 before any)
    traffic_step: int = -1
    #: phase 2 held at its step: no promotion (``--step``, ``--auto``) until resumed
    paused: bool = False
    updated_at: float = field(default=0.0, metadata=EPOCH_SECONDS)
    #: what commands record beside the fields above (:mod:`constellation.ledger.notes`)
    notes: Notes = field(default_factory=lambda: Notes())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MigrationState:
        data = json.loads(text)
        for key in ("write_versions", "read_versions"):
            data[key] = tuple(data.get(key) or (1,))
        data["notes"] = from_stored(data.get("notes"))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


#: a transition's decision: the state as stored now → the fields to change (None: no change).
#: ``notes`` holds only the note entries to set; they are merged into the stored notes
#: (:func:`constellation.ledger.notes.merged`).
Decide = Callable[[MigrationState], Mapping[str, Any] | None]
#: the journal's reason for a transition, or how to word it from the state it changes
Reason = str | Callable[[MigrationState], str]


@dataclass(frozen=True)
class Transition:
    """What one transition found and wrote (``after is before`` when nothing changed)."""

    before: MigrationState
    after: MigrationState

    @property
    def changed(self) -> bool:
        return self.after is not self.before


class StateStore:
    """The state of one plan and environment. Thread-safe; processes coordinate via the DB."""

    def __init__(
        self,
        url: str,
        plan: str,
        environment: str,
        *,
        initial: MigrationState | None = None,
        clock: Callable[[], float] = time.time,
        data_found: Callable[[], str] | None = None,
    ) -> None:
        self.url = url
        self.plan = plan
        self.environment = environment
        self.clock = clock
        self._initial = initial or MigrationState()
        #: what of this plan's data exists beside the state (a queue, an index, an archive),
        #: in words; "" when none. A missing record beside such data is an error, since the
        #: record would otherwise read as "not started" (see :meth:`record`).
        self._data_found = data_found
        self._lock = threading.Lock()
        #: the file that holds the state, for messages (a SQLite file), else the URL masked
        self.where = str(sqlite_file(url) or masked(url))
        try:
            with self._damage():
                self._engine = engine(url)
                create_tables(self._engine, _metadata)
                add_missing_columns(self._engine, _journal)
        except sa.exc.SQLAlchemyError as exc:
            raise StateError(
                f"cannot open the migration state at {masked(url)}: {exc.__class__.__name__}",
                "check migration.state_url in the plan (or that the data folder is writable)",
            ) from exc

    @contextmanager
    def _damage(self) -> Iterator[None]:
        """A damaged state file becomes :class:`DamagedFile` naming it (not the URL)."""
        try:
            yield
        except sa.exc.DatabaseError as exc:
            if not is_damage(exc):
                raise
            raise DamagedFile(
                self.where,
                "the migration state",
                damage_detail(exc),
                "restore it from a backup: it holds the phase, the write mode, the read traffic "
                "and the journal, which no other file has; nothing was changed",
            ) from exc

    def _missing(self) -> None:
        """No record: fine for a migration that never began, an error beside its data."""
        found = self._data_found() if self._data_found else ""
        if found:
            raise DamagedFile(
                self.where,
                "the migration state",
                f"it holds no state for {self.plan}/{self.environment}, but {found} exist: it "
                "was emptied or replaced",
                "restore it from a backup; it must not be read as 'not started' (every phase "
                "would start over on data that moved on). Only if this plan was provisioned and "
                "never migrated (by a version that recorded no state), `constellation "
                "provision` records it; it refuses where the index holds records",
            )

    @property
    def _key(self) -> dict[str, str]:
        return {"plan": self.plan, "environment": self.environment}

    def read(self) -> MigrationState:
        """The current state (the initial one before any change; :class:`DamagedFile` when
        the record is missing beside data of the plan, or the file is damaged)."""
        with self._damage(), self._engine.connect() as db:
            row = db.execute(
                sa.select(_state.c.data).where(
                    _state.c.plan == self.plan, _state.c.environment == self.environment
                )
            ).first()
        if row is None:
            self._missing()
            return self._initial
        return MigrationState.from_json(row[0])

    def exists(self) -> bool:
        """Whether the state's record was written (by :meth:`record` or any transition)."""
        with self._damage(), self._engine.connect() as db:
            row = db.execute(
                sa.select(_state.c.revision).where(
                    _state.c.plan == self.plan, _state.c.environment == self.environment
                )
            ).first()
        return row is not None

    def record(self, command: str, reason: str) -> bool:
        """Write the initial state's record if there is none (``provision`` does, so that the
        record exists before any other data does); True when it was written now."""
        return self.transition(command, reason, lambda _state: {}, creating=True).changed

    def consumer_enabled(self) -> bool:
        """The consumer switch the worker reads before each receive."""
        return self.read().consumer_enabled

    def transition(
        self, command: str, reason: Reason, decide: Decide, *, creating: bool = False
    ) -> Transition:
        """Read, decide, write and journal the state in one transaction; see the module doc.

        ``decide`` is called with the stored state while this transaction holds its write lock
        (SQLite: ``BEGIN IMMEDIATE``; other databases: ``SELECT ... FOR UPDATE``), so no other
        transition can slip in between. It refuses by raising (nothing is written), returns
        None to change nothing (no journal entry), or returns the fields to change, ``notes``
        being only the note keys it sets. It may be called again if the first write of a
        fresh record races another; it must be quick and must not use the database itself.
        ``reason`` may be a function of the same state, for a reason that quotes it.
        ``creating``: the record may be missing beside the plan's data (:meth:`record`).
        """
        with self._lock, self._damage():
            try:
                return self._transition(command, reason, decide, creating)
            except sa.exc.IntegrityError:
                # Two first transitions of a fresh record inserted it at once (only possible
                # where the lock has no row to hold yet); the record exists now, so lock it.
                return self._transition(command, reason, decide, creating)

    def _transition(
        self, command: str, reason: Reason, decide: Decide, creating: bool
    ) -> Transition:
        key = (_state.c.plan == self.plan) & (_state.c.environment == self.environment)
        with self._engine.connect().execution_options(**LOCKING) as db, db.begin():
            row = db.execute(
                sa.select(_state.c.data, _state.c.revision).where(key).with_for_update()
            ).first()
            if row is None and not creating:
                self._missing()
            before = MigrationState.from_json(row[0]) if row else self._initial
            decided = decide(before)
            if decided is None or (creating and row is not None):
                return Transition(before, before)
            after = self._apply(before, decided)
            if row is None:
                db.execute(sa.insert(_state).values(**self._key, revision=1, data=after.to_json()))
            else:
                updated = db.execute(
                    sa.update(_state)
                    .where(key, _state.c.revision == row[1])
                    .values(revision=row[1] + 1, data=after.to_json())
                )
                # The lock makes this impossible; the revision check stays as a guard for a
                # database that would not honour it: a lost update becomes an error.
                if updated.rowcount != 1:
                    raise StateError(
                        "the migration state changed underneath this command", "run it again"
                    )
            db.execute(
                sa.insert(_journal).values(
                    **self._key,
                    at=after.updated_at,
                    command=command,
                    # an operator's reason may quote a URL: no password is journaled
                    reason=masked(reason(before) if callable(reason) else reason),
                    before=before.to_json(),
                    after=after.to_json(),
                    who=current_actor(),
                )
            )
        return Transition(before, after)

    def _apply(self, before: MigrationState, decided: Mapping[str, Any]) -> MigrationState:
        changes = dict(decided)
        if "notes" in changes:
            changes["notes"] = merged(before.notes, changes["notes"])
        try:
            return replace(before, **changes, updated_at=self.clock())
        except TypeError as exc:
            raise StateError(f"unknown state field in {sorted(changes)}") from exc

    def change(self, command: str, reason: str, **changes: Any) -> MigrationState:
        """Set ``changes`` whatever the state holds (a transition that decides nothing);
        ``notes`` sets only the keys it names. Returns the new state."""
        return self.transition(command, reason, lambda _state: changes).after

    def journal(self, limit: int = 20) -> list[JournalEntry]:
        """The last ``limit`` changes, oldest first."""
        with self._damage(), self._engine.connect() as db:
            rows = db.execute(
                sa.select(_journal)
                .where(_journal.c.plan == self.plan, _journal.c.environment == self.environment)
                .order_by(_journal.c.id.desc())
                .limit(limit)
            ).all()
        return [
            JournalEntry(
                r.id,
                r.at,
                r.command,
                r.reason,
                json.loads(r.before),
                json.loads(r.after),
                r.who or "",
            )
            for r in reversed(rows)
        ]

    # resumable work (backfills, upgrades): a named cursor per plan and environment ----------
    def cursor(self, name: str) -> str | None:
        with self._damage(), self._engine.connect() as db:
            row = db.execute(
                sa.select(_cursors.c.value).where(
                    _cursors.c.plan == self.plan,
                    _cursors.c.environment == self.environment,
                    _cursors.c.name == name,
                )
            ).first()
        return row[0] if row else None

    def set_cursor(self, name: str, value: str | None) -> None:
        """Record progress of resumable work (None clears it)."""
        where = (
            (_cursors.c.plan == self.plan)
            & (_cursors.c.environment == self.environment)
            & (_cursors.c.name == name)
        )
        with self._damage(), self._engine.begin() as db:
            db.execute(sa.delete(_cursors).where(where))
            if value is not None:
                db.execute(sa.insert(_cursors).values(**self._key, name=name, value=value))

    def close(self) -> None:
        self._engine.dispose()


def open_state(plan: Plan) -> StateStore:
    """The state store of a loaded plan."""
    versions = (plan.default_version,)
    initial = MigrationState(write_versions=versions, read_versions=versions)
    return StateStore(
        plan.state_url,
        plan.name,
        plan.environment,
        initial=initial,
        data_found=lambda: data_beside(plan),
    )


def data_beside(plan: Plan) -> str:
    """The plan's data on this machine that only a provisioned or migrated plan has, in words
    ("the queue file data/queue.db and the index data/chroma"); "" when there is none."""
    found = []
    if plan.queue.adapter == "sqlite" and _nonempty(plan.queue_path):
        found.append(f"the queue file {plan.queue_path}")
    if not plan.index.url and (plan.index_path / "chroma.sqlite3").exists():
        found.append(f"the index {plan.index_path}")
    archives = sorted((plan.data_dir / "archive").glob("*.jsonl.gz"))
    if archives:
        found.append(f"the archive {archives[-1]}")
    return " and ".join(found)


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
