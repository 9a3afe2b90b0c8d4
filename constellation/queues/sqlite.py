"""The embedded default queue: one SQLite file with SQS semantics.

All queues of a plan live in one file (``<data_dir>/queue.db``). It is safe across threads and
processes: every receive runs in an ``IMMEDIATE`` transaction, so two receivers can never take
the same visible message, and a message stays invisible to everyone until its visibility timeout
passes or it is deleted. WAL mode with ``synchronous=NORMAL`` survives a killed process (not a
power cut during the last commit), which is the guarantee the worker needs.

Redrive follows SQS: when a message that has already been received ``max_receive_count`` times
comes up for another receive, it is moved to the dead-letter queue instead.

A FIFO queue (a ``.fifo`` name) keeps SQS FIFO's order per message group: a receive walks the
queue in send order and passes over every message whose group has a message in flight, so one
group's messages are handed out in order and never two receivers at once. (SQS FIFO's
five-minute deduplication is not reproduced: a resent job is handled twice, which the worker's
newest-wins check makes harmless.)
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from constellation.errors import ConflictError, QueueError, QueueNotFound
from constellation.queues.port import (
    BatchResult,
    Message,
    Outgoing,
    QueueDepth,
    QueueInfo,
    QueueSpec,
    Redrive,
)
from constellation.queues.sqlite_file import QueueFile, guarded

#: the embedded queue accepts what SQS accepts by default
MAX_MESSAGE_SIZE = 256 * 1024
_POLL_SECONDS = 0.05


class SqliteBroker:
    """Creates and opens queues in one SQLite file."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._db = QueueFile(self.path)

    @guarded
    def inspect(self, name: str) -> QueueInfo | None:
        if not self._db.exists():  # looking must not create the file (dry runs, describe)
            return None
        row = (
            self._db.connection()
            .execute(
                "SELECT visibility_timeout, dead_letter, max_receive_count, max_message_size, "
                "created_at, fifo FROM queues WHERE name = ?",
                (name,),
            )
            .fetchone()
        )
        if row is None:
            return None
        timeout, dead_letter, max_receives, max_size, created, fifo = row
        redrive = Redrive(dead_letter, max_receives) if dead_letter else None
        return QueueInfo(
            name=name,
            url=f"sqlite://{self.path}#{name}",
            visibility_timeout=int(timeout),
            redrive=redrive,
            max_message_size=max_size,
            depth=self._depth(name),
            created=float(created),
            fifo=bool(fifo),
        )

    @guarded
    def create(self, spec: QueueSpec) -> QueueInfo:
        redrive = spec.redrive
        try:
            with self._db.transaction() as db:
                db.execute(
                    "INSERT INTO queues (name, visibility_timeout, dead_letter, "
                    "max_receive_count, max_message_size, created_at, fifo) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        spec.name,
                        spec.visibility_timeout,
                        redrive.dead_letter if redrive else None,
                        redrive.max_receive_count if redrive else None,
                        MAX_MESSAGE_SIZE,
                        self.clock(),
                        int(spec.fifo),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(
                f"queue {spec.name} already exists in {self.path}",
                "compare it with the plan (`constellation describe`) instead of creating it",
            ) from exc
        info = self.inspect(spec.name)
        assert info is not None
        return info

    @guarded
    def delete_queue(self, name: str) -> None:
        if not self._db.exists():
            return
        with self._db.transaction() as db:
            db.execute("DELETE FROM messages WHERE queue = ?", (name,))
            db.execute("DELETE FROM queues WHERE name = ?", (name,))

    def open(self, name: str) -> SqliteQueue:
        info = self.inspect(name)
        if info is None:
            raise QueueNotFound(
                f"queue {name} does not exist in {self.path}",
                "run `constellation provision` first",
            )
        return SqliteQueue(self._db, info, self.clock)

    def close(self) -> None:
        self._db.close()

    def _depth(self, name: str) -> QueueDepth:
        return _depth(self._db.connection(), name, self.clock())


class SqliteQueue:
    """One queue inside a :class:`SqliteBroker`'s file. See :class:`~.port.Queue`."""

    def __init__(self, db: QueueFile, info: QueueInfo, clock: Callable[[], float]) -> None:
        self.name = info.name
        self._db = db
        self._info = info
        self._clock = clock

    @property
    def max_message_size(self) -> int:
        return self._info.max_message_size

    def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        result = self.send_batch([Outgoing(body, attributes or {})])
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")
        return result.succeeded[0]

    @guarded
    def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        now = self._clock()
        result = BatchResult()
        rows = []
        for index, message in enumerate(messages):
            size = _size(message)
            if size > self.max_message_size:
                result.failed[index] = (
                    f"message of {size} bytes is over the queue's limit of "
                    f"{self.max_message_size} bytes"
                )
                continue
            message_id = str(uuid.uuid4())
            rows.append(
                (
                    message_id,
                    self.name,
                    message.body,
                    json.dumps(dict(message.attributes)),
                    now,
                    now,
                    message.group,
                )
            )
            result.succeeded.append(message_id)
        with self._db.transaction() as db:
            db.executemany(
                "INSERT INTO messages (id, queue, body, attributes, sent_at, visible_at, grp) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return result

    @guarded
    def receive(
        self,
        max_messages: int = 10,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        timeout = (
            self._info.visibility_timeout if visibility_timeout is None else visibility_timeout
        )
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = self._receive_now(max_messages, timeout)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _receive_now(self, max_messages: int, timeout: float) -> list[Message]:
        now = self._clock()
        redrive = self._info.redrive
        taken: list[Message] = []
        # Walk forward by seq: with a visibility timeout of 0 a message just taken is visible
        # again at once, and must not be taken twice in one receive.
        after = 0
        with self._db.transaction() as db:
            # FIFO: the groups with a message in flight wait until it is deleted or visible
            busy = self._busy_groups(db, now) if self._info.fifo else set()
            while len(taken) < max_messages:
                rows = db.execute(
                    # Walk the queue in order and skip the invisible head: with a deep backlog
                    # this stays flat, where sorting every visible message would not.
                    "SELECT seq, id, body, attributes, sent_at, receive_count, grp "
                    "FROM messages INDEXED BY messages_in_order "
                    "WHERE queue = ? AND visible_at <= ? AND seq > ? ORDER BY seq LIMIT ?",
                    (self.name, now, after, max_messages - len(taken)),
                ).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                for seq, message_id, body, attributes, sent_at, count, group in rows:
                    if group is not None and group in busy:
                        continue  # an earlier message of its group is in flight
                    if redrive is not None and count >= redrive.max_receive_count:
                        # SQS moves it on the receive that would exceed the limit.
                        db.execute(
                            "UPDATE messages SET queue = ?, visible_at = ?, receipt = NULL "
                            "WHERE seq = ?",
                            (redrive.dead_letter, now, seq),
                        )
                        continue
                    receipt = uuid.uuid4().hex
                    db.execute(
                        "UPDATE messages SET receipt = ?, receive_count = ?, visible_at = ? "
                        "WHERE seq = ?",
                        (receipt, count + 1, now + timeout, seq),
                    )
                    taken.append(
                        Message(
                            message_id,
                            receipt,
                            body,
                            count + 1,
                            sent_at,
                            json.loads(attributes),
                            group if self._info.fifo else None,
                        )
                    )
        return taken

    def _busy_groups(self, db: sqlite3.Connection, now: float) -> set[str]:
        rows = db.execute(
            "SELECT DISTINCT grp FROM messages "
            "WHERE queue = ? AND visible_at > ? AND receive_count > 0 AND grp IS NOT NULL",
            (self.name, now),
        ).fetchall()
        return {group for (group,) in rows}

    def delete(self, receipt: str) -> None:
        result = self.delete_batch([receipt])
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")

    @guarded
    def delete_batch(self, receipts: Sequence[str]) -> BatchResult:
        return self._per_receipt(receipts, "DELETE FROM messages WHERE queue = ? AND receipt = ?")

    def change_visibility(self, receipt: str, timeout: float) -> None:
        result = self.change_visibility_batch([receipt], timeout)
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")

    @guarded
    def change_visibility_batch(self, receipts: Sequence[str], timeout: float) -> BatchResult:
        visible_at = self._clock() + timeout
        return self._per_receipt(
            receipts,
            "UPDATE messages SET visible_at = ? WHERE queue = ? AND receipt = ?",
            (visible_at,),
        )

    @guarded
    def release_batch(self, receipts: Sequence[str]) -> BatchResult:
        # The receipt changes too: the holder's later calls with it must fail, as after a
        # redelivery.
        return self._per_receipt(
            receipts,
            "UPDATE messages SET visible_at = ?, receive_count = MAX(receive_count - 1, 0), "
            "receipt = NULL WHERE queue = ? AND receipt = ?",
            (self._clock(),),
        )

    def _per_receipt(
        self, receipts: Sequence[str], sql: str, leading: tuple[object, ...] = ()
    ) -> BatchResult:
        result = BatchResult()
        with self._db.transaction() as db:
            for index, receipt in enumerate(receipts):
                if db.execute(sql, (*leading, self.name, receipt)).rowcount:
                    result.succeeded.append(receipt)
                else:
                    result.failed[index] = "receipt is not valid (deleted, or received again since)"
        return result

    @guarded
    def depth(self) -> QueueDepth:
        return _depth(self._db.connection(), self.name, self._clock())

    @guarded
    def purge(self) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM messages WHERE queue = ?", (self.name,))


def _depth(db: sqlite3.Connection, name: str, now: float) -> QueueDepth:
    # Two range counts on the (queue, visible_at) index, in one read transaction.
    ((visible, in_flight),) = db.execute(
        "SELECT (SELECT COUNT(*) FROM messages WHERE queue = ? AND visible_at <= ?), "
        "(SELECT COUNT(*) FROM messages WHERE queue = ? AND visible_at > ?)",
        (name, now, name, now),
    ).fetchall()
    return QueueDepth(visible=int(visible), in_flight=int(in_flight), exact=True)


def _size(message: Outgoing) -> int:
    """Bytes as SQS counts them: the body plus each attribute's name and value."""
    extra = sum(len(k.encode()) + len(v.encode()) for k, v in message.attributes.items())
    return len(message.body.encode()) + extra
