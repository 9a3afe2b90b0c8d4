"""The embedded queue's SQLite file: its schema, a connection per thread, write transactions
queued within the process, and damage named (see :mod:`constellation.queues.sqlite`)."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from constellation.damage import detail as damage_detail
from constellation.damage import is_damage
from constellation.errors import DamagedFile, QueueError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_timeout REAL NOT NULL,
    dead_letter TEXT,
    max_receive_count INTEGER,
    max_message_size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    fifo INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    grp TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS messages_in_order ON messages (queue, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt);
"""
#: columns added since the first release, for queue files made before them
_ADDED_COLUMNS = (
    ("queues", "fifo", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "grp", "TEXT"),
)


def guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Run a broker's or queue's method with its file's damage named (see ``guard``)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> T:
        with self._db.guard():
            return method(self, *args, **kwargs)

    return run


class QueueFile:
    """One SQLite file, a connection per thread (sqlite3 connections are not thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._schema_ready = False
        # One writer at a time within the process, queued here: the threads of one worker
        # (receives, deletes) would otherwise meet on SQLite's file lock, whose busy handler
        # sleeps 1, 2, 5, 10... ms before looking again. Other processes still wait there.
        self._write_lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """A damaged file becomes :class:`DamagedFile` naming it, with what to do."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            raise DamagedFile(
                self.path,
                "the queue file",
                damage_detail(exc),
                "restore it from a backup, or move it aside and run `constellation provision` "
                "(its messages are then lost: `constellation requeue --all` sends every note "
                "again)",
            ) from exc

    def connection(self) -> sqlite3.Connection:
        """This thread's connection; the file and its schema are created on first use."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if not self._schema_ready:
                # executescript() commits any open transaction first, so the script brings its
                # own: one IMMEDIATE transaction, safe when processes open a new file at once.
                db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
                _add_columns(db)
                self._schema_ready = True
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the file's write lock from its first statement."""
        db = self.connection()
        with self._write_lock:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if is_damage(exc):
                    raise  # named by guard()
                raise QueueError(f"queue file {self.path} is not usable: {exc}") from exc
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _add_columns(db: sqlite3.Connection) -> None:
    """Bring a queue file from an older release up to the schema (safe in parallel)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
