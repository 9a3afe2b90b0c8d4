"""The queue port's contract for FIFO queues: one message group at a time, in order.

Each adapter's test class inherits it beside :class:`~.queue_contract.QueueContract`, whose
``broker`` and ``prefix`` fixtures it uses.
"""

from __future__ import annotations

import time

import pytest

from constellation.queues.moves import move_messages
from constellation.queues.port import Broker, Outgoing, Queue, QueueSpec, Redrive
from tests.contract.queue_contract import SETTLE, drain


class FifoQueueContract:
    def make_fifo(self, broker: Broker, prefix: str, visibility: int = 30) -> tuple[Queue, Queue]:
        broker.create(QueueSpec(f"{prefix}-dlq.fifo", visibility, fifo=True))
        redrive = Redrive(f"{prefix}-dlq.fifo", 5)
        broker.create(QueueSpec(f"{prefix}-embed.fifo", visibility, redrive, fifo=True))
        return broker.open(f"{prefix}-embed.fifo"), broker.open(f"{prefix}-dlq.fifo")

    def test_a_fifo_name_is_required_of_a_fifo_queue_only(self) -> None:
        with pytest.raises(ValueError, match=r"\.fifo"):
            QueueSpec("jobs", 30, fifo=True)
        with pytest.raises(ValueError, match=r"\.fifo"):
            QueueSpec("jobs.fifo", 30)

    def test_fifo_hands_out_a_group_in_order_and_never_two_at_once(
        self, broker: Broker, prefix: str
    ) -> None:
        queue, _ = self.make_fifo(broker, prefix)
        info = broker.inspect(queue.name)
        assert info is not None and info.fifo
        sent = [("A", "a1"), ("B", "b1"), ("A", "a2"), ("A", "a3"), ("B", "b2")]
        assert queue.send_batch([Outgoing(body, group=group) for group, body in sent]).ok
        (first,) = queue.receive(max_messages=1)
        assert (first.group, first.body) == ("A", "a1")
        # A has a message in flight: only B's come, in order
        others = drain(queue)
        assert [m.body for m in others] == ["b1", "b2"][: len(others)] and others
        assert all(m.group == "B" for m in others)
        queue.delete_batch([m.receipt for m in others])
        assert not queue.receive(max_messages=10)
        queue.delete(first.receipt)
        rest: list[str] = []
        while batch := queue.receive(max_messages=10):
            rest += [m.body for m in batch]
            queue.delete_batch([m.receipt for m in batch])
        assert rest == ["a2", "a3"]

    def test_fifo_redelivers_the_head_of_a_group_first(self, broker: Broker, prefix: str) -> None:
        queue, _ = self.make_fifo(broker, prefix)
        queue.send_batch([Outgoing("x1", group="X"), Outgoing("x2", group="X")])
        (held,) = queue.receive(max_messages=1, visibility_timeout=1)
        assert held.body == "x1"
        time.sleep(1.3)  # its visibility ran out: it comes back before the later one
        (again, *_) = queue.receive(max_messages=10, wait_seconds=1)
        assert again.body == "x1" and again.receive_count == 2

    def test_a_dead_letter_moved_back_to_a_fifo_queue_is_not_dropped_as_a_copy(
        self, broker: Broker, prefix: str
    ) -> None:
        queue, dead = self.make_fifo(broker, prefix)
        queue.send_batch([Outgoing('{"job": 1}', group="G")])
        (message,) = queue.receive(max_messages=1)
        assert move_messages(queue, dead).moved == 0  # in flight: nothing to move
        queue.change_visibility(message.receipt, 0)
        time.sleep(SETTLE)
        assert move_messages(queue, dead).moved == 1
        # back within SQS's 5-minute deduplication window, with the same body
        assert move_messages(dead, queue).moved == 1
        (back,) = queue.receive(max_messages=10, wait_seconds=1)
        assert (back.body, back.group) == ('{"job": 1}', "G")
