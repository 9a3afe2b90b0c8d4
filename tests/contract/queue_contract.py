"""The queue port's contract: one suite, run against every adapter.

:class:`QueueContract` holds the behaviour every adapter must have, moving messages between
queues included (FIFO queues: :class:`~.queue_fifo_contract.FifoQueueContract`); each adapter's test module (``test_queue_sqlite.py``, ``test_queue_sqs.py``)
subclasses it and provides a ``broker`` fixture and :meth:`QueueContract.receive_concurrently`.
This module is not named ``test_*`` so that pytest does not collect the base class on its own;
``conftest.py`` has pytest rewrite its asserts all the same.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from constellation.errors import ConflictError, QueueError, QueueNotFound
from constellation.queues.moves import move_messages
from constellation.queues.port import (
    BatchResult,
    Broker,
    Message,
    Outgoing,
    Queue,
    QueueDepth,
    QueueSpec,
    Redrive,
)

#: receivers pause this long between receives so that they overlap instead of one draining all
PAUSE = 0.002
#: a message released with visibility 0 is visible from the next millisecond (moto compares
#: times in whole milliseconds); waiting this long makes depth counts exact
SETTLE = 0.01


def drain(queue: Queue, visibility: float = 30) -> list[Message]:
    """Receive everything visible now (each message hidden for ``visibility`` seconds)."""
    taken: list[Message] = []
    while batch := queue.receive(max_messages=10, visibility_timeout=visibility):
        taken.extend(batch)
    return taken


class _CrashOnDelete:
    """A queue that dies between a move's send and its delete (the worst moment)."""

    def __init__(self, inner: Queue) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def delete_batch(self, receipts: Sequence[str]) -> BatchResult:
        raise RuntimeError("simulated crash between send and delete")


class QueueContract:
    """Behaviour every queue adapter must have. Subclasses provide the ``broker`` fixture."""

    #: whether a receipt from an earlier receive is refused once the message was received again
    #: (real SQS: "the request succeeds, but the message might not be deleted")
    stale_receipts_refused = True

    @pytest.fixture
    def broker(self) -> Iterator[Broker]:
        raise NotImplementedError

    @pytest.fixture
    def prefix(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}"

    def receive_concurrently(self, broker: Broker, name: str) -> list[list[str]]:
        """Two receivers take messages one at a time until none is visible; ids per receiver."""
        raise NotImplementedError

    def make(
        self,
        broker: Broker,
        name: str,
        visibility: int = 30,
        redrive: Redrive | None = None,
    ) -> Queue:
        broker.create(QueueSpec(name, visibility, redrive))
        return broker.open(name)

    # sending, receiving, deleting

    def test_round_trip_keeps_body_and_attributes(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        before = time.time()
        message_id = queue.send('{"noteId": "n1"}', {"reason": "not_json", "trace": "é-1"})
        [message] = queue.receive(max_messages=10, wait_seconds=1)
        assert message.id == message_id
        assert message.body == '{"noteId": "n1"}'
        assert dict(message.attributes) == {"reason": "not_json", "trace": "é-1"}
        assert message.receive_count == 1
        assert before - 2 <= message.sent_at <= time.time() + 2
        queue.delete(message.receipt)
        assert queue.receive() == []
        assert queue.depth() == QueueDepth(visible=0, in_flight=0)

    def test_delete_removes_only_the_received_message(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send_batch([Outgoing("first"), Outgoing("second")])
        [first] = queue.receive(max_messages=1)
        queue.delete(first.receipt)
        assert [m.body for m in queue.receive(max_messages=10)] == ["second"]

    def test_unknown_receipts_are_per_entry_failures(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("kept")
        [message] = queue.receive(visibility_timeout=30)
        deleted = queue.delete_batch(["not-a-receipt", message.receipt])
        assert set(deleted.failed) == {0}
        assert deleted.succeeded == [message.receipt]
        released = queue.change_visibility_batch(["not-a-receipt"], 0)
        assert set(released.failed) == {0}
        with pytest.raises(QueueError):
            queue.delete("not-a-receipt")

    def test_purge_empties_the_queue(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send_batch([Outgoing(f"m{i}") for i in range(3)])
        queue.receive(max_messages=1)
        queue.purge()
        assert queue.depth().total == 0

    # visibility, receive counts, redrive

    def test_visibility_timeout_expiry_redelivers(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("job")
        [first] = queue.receive(visibility_timeout=1)
        assert queue.receive() == []  # invisible while its timeout runs
        time.sleep(1.1)
        [again] = queue.receive(visibility_timeout=30)
        assert again.id == first.id
        assert again.receipt != first.receipt
        assert (first.receive_count, again.receive_count) == (1, 2)

        stale = queue.delete_batch([first.receipt])
        if self.stale_receipts_refused:
            assert set(stale.failed) == {0}
            assert queue.depth() == QueueDepth(visible=0, in_flight=1)
        queue.delete_batch([again.receipt])
        assert queue.depth().total == 0

    def test_fractional_visibility_rounds_up(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("job")
        assert len(queue.receive(visibility_timeout=0.4)) == 1
        assert queue.receive() == []  # not released early (SQS would round 0.4 down to 0)

    def test_change_visibility_zero_releases_at_once(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("job")
        [message] = queue.receive(visibility_timeout=30)
        queue.change_visibility(message.receipt, 0)
        time.sleep(SETTLE)
        [again] = queue.receive(visibility_timeout=30)
        assert again.id == message.id
        assert again.receive_count == 2
        queue.change_visibility(again.receipt, 30)  # hiding it longer works too
        assert queue.receive() == []

    #: whether :meth:`Queue.release_batch` leaves the receive uncounted (SQS cannot)
    release_uncounted = True

    def test_release_gives_messages_back_at_once(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send_batch([Outgoing("a"), Outgoing("b")])
        taken = drain(queue)
        assert len(taken) == 2
        released = queue.release_batch([m.receipt for m in taken] + ["not-a-receipt"])
        assert sorted(released.succeeded) == sorted(m.receipt for m in taken)
        assert list(released.failed) == [2]
        time.sleep(SETTLE)
        again = drain(queue)
        assert sorted(m.body for m in again) == ["a", "b"]
        # the receive that was given back does not count where the technology allows
        assert {m.receive_count for m in again} == {1 if self.release_uncounted else 2}

    def test_redrive_after_max_receive_count(self, broker: Broker, prefix: str) -> None:
        dead = self.make(broker, f"{prefix}-dlq")
        queue = self.make(broker, f"{prefix}-embed", redrive=Redrive(dead.name, 2))
        queue.send("poison", {"trace": "t1"})
        for expected_count in (1, 2):
            [message] = queue.receive(wait_seconds=1, visibility_timeout=30)
            assert message.receive_count == expected_count
            queue.change_visibility(message.receipt, 0)  # fail it without waiting
            time.sleep(SETTLE)
        assert queue.receive(wait_seconds=0) == []  # the third receive moves it instead
        assert queue.depth().total == 0
        [dead_message] = dead.receive(wait_seconds=1)
        assert dead_message.body == "poison"
        assert dict(dead_message.attributes) == {"trace": "t1"}

    # batches and limits

    def test_batches_larger_than_ten(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        sent = queue.send_batch([Outgoing(f"m{i}", {"i": str(i)}) for i in range(25)])
        assert sent.ok
        assert len(set(sent.succeeded)) == 25
        received = queue.receive(max_messages=25, wait_seconds=1, visibility_timeout=30)
        assert sorted(m.id for m in received) == sorted(sent.succeeded)
        assert {m.body: m.attributes["i"] for m in received} == {f"m{i}": str(i) for i in range(25)}
        deleted = queue.delete_batch([m.receipt for m in received])
        assert deleted.ok
        assert deleted.succeeded == [m.receipt for m in received]
        assert queue.depth().total == 0

    def test_batches_split_by_total_size(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        body = "x" * (queue.max_message_size // 3 + 100)  # three of these exceed one batch
        sent = queue.send_batch([Outgoing(body) for _ in range(4)])
        assert sent.ok
        assert len(sent.succeeded) == 4
        assert queue.depth().visible == 4

    def test_oversize_message_is_a_per_entry_failure(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        limit = queue.max_message_size
        big = "x" * (limit + 1)
        heavy = Outgoing("x" * (limit - 3), {"note": "attributes count too"})
        sent = queue.send_batch([Outgoing("small-1"), Outgoing(big), heavy, Outgoing("small-2")])
        assert set(sent.failed) == {1, 2}
        assert str(limit) in sent.failed[1]
        assert len(sent.succeeded) == 2
        assert sorted(m.body for m in queue.receive(max_messages=10)) == ["small-1", "small-2"]
        with pytest.raises(QueueError, match="limit"):
            queue.send(big)

    # concurrency and depth

    def test_concurrent_receivers_never_share_a_message(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        sent = queue.send_batch([Outgoing(f"m{i}") for i in range(100)])
        per_receiver = self.receive_concurrently(broker, queue.name)
        taken = [message_id for ids in per_receiver for message_id in ids]
        assert all(per_receiver), "the receivers did not overlap; the test proved nothing"
        assert len(taken) == len(set(taken)), "a message was delivered to both receivers"
        assert sorted(taken) == sorted(sent.succeeded)

    def test_depth_counts_visible_and_in_flight(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send_batch([Outgoing(f"m{i}") for i in range(3)])
        queue.receive(max_messages=1, visibility_timeout=30)
        assert queue.depth() == QueueDepth(visible=2, in_flight=1)
        assert queue.depth().total == 3

    # the broker

    def test_inspect_missing_and_existing(self, broker: Broker, prefix: str) -> None:
        assert broker.inspect(f"{prefix}-missing") is None
        broker.create(QueueSpec(f"{prefix}-dlq", 30))
        created = broker.create(QueueSpec(f"{prefix}-embed", 45, Redrive(f"{prefix}-dlq", 3)))
        info = broker.inspect(f"{prefix}-embed")
        assert info == created
        assert info is not None
        assert info.name == f"{prefix}-embed"
        assert info.visibility_timeout == 45
        assert info.redrive == Redrive(f"{prefix}-dlq", 3)
        assert info.max_message_size >= 256 * 1024
        assert info.depth == QueueDepth(visible=0, in_flight=0)
        dead = broker.inspect(f"{prefix}-dlq")
        assert dead is not None
        assert dead.redrive is None

    def test_open_missing_queue_says_to_provision(self, broker: Broker, prefix: str) -> None:
        with pytest.raises(QueueNotFound, match="provision") as raised:
            broker.open(f"{prefix}-missing")
        assert f"{prefix}-missing" in str(raised.value)

    def test_create_refuses_an_existing_queue(self, broker: Broker, prefix: str) -> None:
        broker.create(QueueSpec(f"{prefix}-embed", 30))
        with pytest.raises(ConflictError):
            broker.create(QueueSpec(f"{prefix}-embed", 30))

    def test_a_queue_created_again_is_told_apart_by_its_creation_time(
        self, broker: Broker, prefix: str
    ) -> None:
        before = time.time()
        first = broker.create(QueueSpec(f"{prefix}-embed", 30))
        assert first.created is not None and before - 1 <= first.created <= time.time() + 1
        broker.delete_queue(first.name)
        time.sleep(1.05)  # SQS stamps creation in whole seconds
        again = broker.create(QueueSpec(f"{prefix}-embed", 30))
        assert again.created is not None and again.created > first.created

    def test_delete_queue(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("gone")
        broker.delete_queue(queue.name)
        assert broker.inspect(queue.name) is None
        broker.delete_queue(queue.name)  # missing queues are ignored

    # moving messages

    def test_move_brings_dead_letters_back(self, broker: Broker, prefix: str) -> None:
        dead = self.make(broker, f"{prefix}-dlq")
        queue = self.make(broker, f"{prefix}-embed")
        dead.send_batch(
            [Outgoing(f"job-{i}", {"reason": "model_down", "trace": f"t{i}"}) for i in range(12)]
        )
        result = move_messages(dead, queue)
        assert result.moved == 12
        assert result.left == []
        assert result.ok
        moved = drain(queue)
        assert sorted(m.body for m in moved) == sorted(f"job-{i}" for i in range(12))
        # the dead-letter reason no longer applies; other attributes travel with the body
        assert all(dict(m.attributes) == {"trace": f"t{m.body[4:]}"} for m in moved)
        assert dead.depth().total == 0

    def test_move_leaves_rejected_messages_in_place(self, broker: Broker, prefix: str) -> None:
        dead = self.make(broker, f"{prefix}-dlq")
        queue = self.make(broker, f"{prefix}-embed")
        sent = dead.send_batch([Outgoing(b) for b in ("good-1", "bad-1", "good-2", "bad-2")])
        result = move_messages(
            dead, queue, accept=lambda m: "still broken" if m.body.startswith("bad") else None
        )
        assert result.moved == 2
        assert sorted(result.left) == sorted(
            [(sent.succeeded[1], "still broken"), (sent.succeeded[3], "still broken")]
        )
        assert sorted(m.body for m in drain(queue)) == ["good-1", "good-2"]
        time.sleep(SETTLE)
        # released at the end of the move, not left hidden
        assert dead.depth() == QueueDepth(visible=2, in_flight=0)

    def test_move_stops_at_the_limit(self, broker: Broker, prefix: str) -> None:
        dead = self.make(broker, f"{prefix}-dlq")
        queue = self.make(broker, f"{prefix}-embed")
        dead.send_batch([Outgoing(f"job-{i}") for i in range(5)])
        assert move_messages(dead, queue, limit=3, batch_size=2).moved == 3
        assert queue.depth().total == 3
        assert dead.depth().total == 2

    def test_move_crash_between_send_and_delete_loses_nothing(
        self, broker: Broker, prefix: str
    ) -> None:
        dead = self.make(broker, f"{prefix}-dlq")
        queue = self.make(broker, f"{prefix}-embed")
        bodies = [f"job-{i}" for i in range(5)]
        dead.send_batch([Outgoing(b) for b in bodies])
        with pytest.raises(RuntimeError, match="simulated crash"):
            move_messages(_CrashOnDelete(dead), queue)
        # every message is in the target and still in the source: duplicated, never lost
        assert sorted(m.body for m in drain(queue)) == bodies
        assert dead.depth().total == len(bodies)
