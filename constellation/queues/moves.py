"""Moving messages between queues (dead-letter redrive, requeue), on any adapter.

Order of work, per batch: receive from the source, send the accepted messages to the target,
*then* delete them from the source. A crash between the send and the delete leaves a message in
both queues (the source copy comes back when its visibility timeout passes), so a move may
duplicate a message but never loses one; the worker is idempotent, so a duplicate only costs
one more embedding.

Messages that ``accept`` rejects stay invisible in the source until the whole move is over, so
the loop does not receive them again, and are then released (visibility 0) for others to see.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from constellation.queues.port import Message, Outgoing, Queue

#: attributes that describe why a message was dead-lettered: stale once it is moved back
DEAD_LETTER_ATTRIBUTES = frozenset({"reason", "detail", "error"})
#: how long received messages stay hidden while a move runs (seconds)
DEFAULT_HOLD_SECONDS = 300.0


@dataclass(frozen=True)
class MoveResult:
    """What a move did: ``left`` lists (message id, reason) of rejected messages left in place,
    ``failures`` (message id, reason) of messages that could not be moved or deleted."""

    moved: int = 0
    left: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _accept_all(message: Message) -> str | None:
    return None


def move_messages(
    source: Queue,
    target: Queue,
    *,
    limit: int | None = None,
    accept: Callable[[Message], str | None] = _accept_all,
    drop_attributes: Collection[str] = DEAD_LETTER_ATTRIBUTES,
    batch_size: int = 10,
    hold_seconds: float = DEFAULT_HOLD_SECONDS,
) -> MoveResult:
    """Move messages from ``source`` to ``target``: send each, then delete it from the source.

    ``accept`` returns None to move a message, or a reason to leave it where it is. Bodies are
    moved unchanged; attributes too, except those named in ``drop_attributes`` (by default the
    dead-letter reason attributes, which no longer apply once a message is requeued). Stops when
    the source has nothing visible, or after ``limit`` messages were moved.
    """
    moved = 0
    left: dict[str, tuple[str, str]] = {}  # message id → (latest receipt, reason)
    failures: list[tuple[str, str]] = []
    release: list[str] = []  # receipts to make visible again once the move is over
    try:
        while limit is None or moved < limit:
            want = batch_size if limit is None else min(batch_size, limit - moved)
            batch = source.receive(max_messages=want, visibility_timeout=hold_seconds)
            if not batch:
                break
            fresh = [message for message in batch if message.id not in left]
            for message in batch:
                if message.id in left:  # held longer than hold_seconds: keep the new receipt
                    left[message.id] = (message.receipt, left[message.id][1])
            if not fresh:
                break  # only rejected messages remain visible
            accepted: list[Message] = []
            for message in fresh:
                reason = accept(message)
                if reason is None:
                    accepted.append(message)
                else:
                    left[message.id] = (message.receipt, reason)
            moved += _move_batch(source, target, accepted, drop_attributes, failures, release)
    except BaseException:
        # After a crash too, rejected messages must not stay hidden for hold_seconds; but a
        # failing release must not hide the original error.
        with contextlib.suppress(Exception):
            _release(source, release, left)
        raise
    _release(source, release, left)
    return MoveResult(
        moved=moved,
        left=[(message_id, reason) for message_id, (_, reason) in left.items()],
        failures=failures,
    )


def _release(source: Queue, release: list[str], left: dict[str, tuple[str, str]]) -> None:
    receipts = [*release, *(receipt for receipt, _ in left.values())]
    if receipts:
        source.change_visibility_batch(receipts, 0)


def _move_batch(
    source: Queue,
    target: Queue,
    messages: Sequence[Message],
    drop_attributes: Collection[str],
    failures: list[tuple[str, str]],
    release: list[str],
) -> int:
    """Send ``messages`` to the target, then delete the sent ones; return how many moved."""
    if not messages:
        return 0
    outgoing = [
        Outgoing(
            message.body,
            {k: v for k, v in message.attributes.items() if k not in drop_attributes},
            # the same group on a FIFO target; a fresh deduplication id, so that a move back
            # within 5 minutes of the first send is not dropped as a copy of it
            group=message.group,
            dedup=uuid.uuid4().hex,
        )
        for message in messages
    ]
    sent = target.send_batch(outgoing)
    to_delete: list[Message] = []
    for index, message in enumerate(messages):
        if index in sent.failed:
            failures.append((message.id, f"not sent to {target.name}: {sent.failed[index]}"))
            release.append(message.receipt)  # leave it in the source, visible again
        else:
            to_delete.append(message)
    if not to_delete:
        return 0
    deleted = source.delete_batch([message.receipt for message in to_delete])
    for index, message in enumerate(to_delete):
        if index in deleted.failed:
            # It is in the target already; the source copy will be delivered again later.
            failures.append(
                (
                    message.id,
                    f"sent to {target.name} but not deleted from {source.name} "
                    f"(it will be duplicated): {deleted.failed[index]}",
                )
            )
    return len(to_delete) - len(deleted.failed)
