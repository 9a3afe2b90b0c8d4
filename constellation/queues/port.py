"""The queue port: what the worker, producers and operators need from a queue.

The semantics are Amazon SQS's (standard queues): at-least-once delivery, a visibility timeout
after each receive, an approximate receive count, and a redrive policy that moves a message to
its dead-letter queue once it has been received ``max_receive_count`` times without being deleted.

A FIFO queue (``QueueSpec.fifo``; its name ends in ``.fifo``) adds SQS FIFO's ordering per
message *group*: the messages of one group are delivered in the order they were sent, and none
of a group is delivered while an earlier one of that group is in flight. Producers put every
job of one note in one group (:func:`constellation.producer.job_message`), so two workers never
hold two edits of a note at once and the newer one is always handled last.

Two adapters implement it: :class:`~constellation.queues.sqlite.SqliteQueue` (embedded default)
and :class:`~constellation.queues.sqs.SqsQueue` (AWS, LocalStack, moto). A *broker* creates,
inspects and opens queues; a *queue* sends, receives and deletes messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from constellation.timefields import EPOCH_SECONDS


@dataclass(frozen=True)
class Message:
    """One received message. ``receipt`` is valid until the message becomes visible again."""

    id: str
    receipt: str
    body: str
    receive_count: int
    #: when the producer sent it, epoch seconds
    sent_at: float
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: its message group on a FIFO queue (None on a standard queue)
    group: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A message to send, with optional string attributes (for example a dead-letter reason).

    ``group``: its message group on a FIFO queue (ignored by a standard queue; a FIFO queue
    puts a message without one in a group of its own). ``dedup``: on a FIFO queue, the id
    under which SQS drops a resend within 5 minutes; None uses the queue's content-based
    deduplication (the body's hash). A message moved back from the dead-letter queue gets a
    fresh one, so it is never dropped as a copy of its first send.
    """

    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    group: str | None = None
    dedup: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """Per-entry outcome of a batch call: nothing is silently dropped.

    ``succeeded`` holds message ids (send) or receipts (delete, change visibility) in input
    order; ``failed`` maps the input index to the reason that entry failed.
    """

    succeeded: list[str] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Redrive:
    """Where a message goes after ``max_receive_count`` receives without a delete."""

    dead_letter: str
    max_receive_count: int


@dataclass(frozen=True)
class QueueSpec:
    """What provisioning asks for."""

    name: str
    visibility_timeout: int
    redrive: Redrive | None = None
    #: a FIFO queue (ordered per message group); its name must end in ``.fifo``
    fifo: bool = False

    def __post_init__(self) -> None:
        if self.fifo != is_fifo_name(self.name):
            raise ValueError(
                f"queue {self.name}: a FIFO queue's name ends in {FIFO_SUFFIX!r}, and only a "
                "FIFO queue's does"
            )


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int
    #: the counts are exact at the moment they were read (a SQLite file), not SQS's approximate
    #: ones that can lag: one empty reading is then enough to call the queue empty
    exact: bool = field(default=False, compare=False, metadata={"json": False})

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


@dataclass(frozen=True)
class QueueInfo:
    """What an existing queue looks like (``describe``, and provisioning's conflict check)."""

    name: str
    url: str
    visibility_timeout: int
    redrive: Redrive | None
    max_message_size: int
    depth: QueueDepth
    #: when the queue was created (epoch seconds), if the technology says: with the URL it
    #: tells a queue from a new one of the same name (monitoring scopes its figures by it)
    created: float | None = field(default=None, metadata=EPOCH_SECONDS)
    fifo: bool = False


@runtime_checkable
class Queue(Protocol):
    """One queue. Batch calls accept any number of entries; adapters chunk as their API needs."""

    name: str

    def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        """Send one message; return its id."""
        ...

    def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        """Send many messages; per-entry failures are reported, not raised."""
        ...

    def receive(
        self,
        max_messages: int = 10,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        """Receive up to ``max_messages``, waiting up to ``wait_seconds`` for the first one."""
        ...

    def delete(self, receipt: str) -> None:
        """Delete one received message."""
        ...

    def delete_batch(self, receipts: Sequence[str]) -> BatchResult:
        """Delete received messages; per-entry failures are reported, not raised."""
        ...

    def change_visibility(self, receipt: str, timeout: float) -> None:
        """Hide a received message for ``timeout`` more seconds (0 releases it now)."""
        ...

    def change_visibility_batch(self, receipts: Sequence[str], timeout: float) -> BatchResult:
        """:meth:`change_visibility` for many messages."""
        ...

    def release_batch(self, receipts: Sequence[str]) -> BatchResult:
        """Give received messages back at once, as if they had not been received where the
        technology allows it (SQLite: the receive count is lowered again). SQS cannot lower
        a receive count: there it is :meth:`change_visibility_batch` to 0."""
        ...

    def depth(self) -> QueueDepth:
        """Approximate visible and in-flight message counts."""
        ...

    def purge(self) -> None:
        """Delete every message."""
        ...

    @property
    def max_message_size(self) -> int:
        """The largest body (bytes, attributes included) this queue accepts."""
        ...


@runtime_checkable
class Broker(Protocol):
    """Creates, inspects, opens and deletes queues of one technology."""

    def inspect(self, name: str) -> QueueInfo | None:
        """The queue named ``name``, or None when it does not exist."""
        ...

    def create(self, spec: QueueSpec) -> QueueInfo:
        """Create a queue (which must not exist yet)."""
        ...

    def delete_queue(self, name: str) -> None:
        """Delete a queue and its messages (missing queues are ignored)."""
        ...

    def open(self, name: str) -> Queue:
        """Open an existing queue; raise :class:`QueueNotFound` with a next step if missing."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


#: the name suffix SQS requires of a FIFO queue (and the SQLite queue too, for the same plans)
FIFO_SUFFIX = ".fifo"


def is_fifo_name(name: str) -> bool:
    return name.endswith(FIFO_SUFFIX)


#: SQS refuses more than this many entries per send/receive/delete call
SQS_BATCH_LIMIT = 10
#: SQS long polling waits at most this long per receive call
SQS_MAX_WAIT = 20
