"""The worker's loop, on the same rig as test_worker.py: how batches close, how many run at
once, visibility while they run, stopping, the consumer switch, and the end of a drain.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from constellation.queues.port import Message, QueueDepth
from constellation.queues.sqlite import SqliteQueue
from constellation.worker import Worker, WorkerSettings
from tests.unit.worker_rig import Rig, job


def test_batch_closes_at_size(rig: Rig) -> None:
    rig.send(*(job("u", f"n{i}", f"t{i}") for i in range(20)))
    rig.worker(max_batch_size=5, max_batch_timeout=60, max_concurrency=1).run(drain=True)
    assert [len(b) for b in rig.embedder.batches] == [5, 5, 5, 5]


class TrickleQueue:
    """One job arrives every ``step`` seconds of a fake clock; waiting advances that clock."""

    def __init__(self, queue: SqliteQueue, clock: list[float], step: float) -> None:
        self.queue, self.clock, self.step, self.name = queue, clock, step, queue.name
        self.next_arrival = step

    def receive(
        self,
        max_messages: int = 10,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        if self.next_arrival - self.clock[0] > wait_seconds:
            self.clock[0] += wait_seconds
            return []
        self.clock[0] = max(self.clock[0], self.next_arrival)
        self.next_arrival = self.clock[0] + self.step
        return self.queue.receive(1, 0, visibility_timeout)

    def __getattr__(self, name: str) -> object:
        return getattr(self.queue, name)


def test_batch_closes_at_timeout_after_its_first_job(rig: Rig) -> None:
    rig.send(*(job("u", f"n{i}", f"t{i}") for i in range(10)))
    now = [0.0]
    trickle = TrickleQueue(rig.queue, now, step=1.0)  # one job per "second"
    worker = rig.worker(
        trickle,
        clock=lambda: now[0],
        max_batch_size=100,
        max_batch_timeout=3.5,
        max_concurrency=1,
        wait_time=1,
        poll_interval=0.01,
    )
    worker.run(max_messages=10)
    # the first job (t=1) opens a batch; jobs at t=2, 3, 4 join; at t=4.5 its 3.5 s are over.
    # The last batch closes at size: only 2 of the 10 messages were left to receive.
    assert [len(b) for b in rig.embedder.batches] == [4, 4, 2]


def test_concurrency_is_bounded(rig: Rig) -> None:
    in_flight = []
    gate = threading.Semaphore(0)
    original = rig.processor.start

    def slow(batch: list[Message]):  # type: ignore[no-untyped-def]
        in_flight.append(1)
        peak.append(len(in_flight))
        gate.acquire(timeout=0.3)
        in_flight.pop()
        return original(batch)

    peak: list[int] = []
    rig.processor.start = slow  # type: ignore[method-assign]
    rig.send(*(job("u", f"n{i}", f"t{i}") for i in range(40)))
    rig.worker(max_batch_size=4, max_concurrency=3).run(drain=True)
    assert max(peak) == 3
    assert len(rig.index.records) == 40


def test_visibility_is_extended_while_a_batch_is_slow(tmp_path: Path) -> None:
    rig = Rig(tmp_path, visibility=1)
    original = rig.processor.start

    entered, release = threading.Event(), threading.Event()

    def slow(batch: list[Message]):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(30)  # as slow as the test needs: well past the visibility timeout
        return original(batch)

    rig.processor.start = slow  # type: ignore[method-assign]
    rig.send(job("u", "n", "slow one"))
    worker = rig.worker(visibility_timeout=1, max_batch_timeout=0.05)
    thread = threading.Thread(target=worker.run, kwargs={"drain": True})
    thread.start()
    assert entered.wait(30)
    time.sleep(1.5)  # past the 1 s visibility timeout: the message would be visible again
    # a second consumer sees nothing: the message is still held by the slow batch
    try:
        assert rig.queue.receive(max_messages=10) == []
    finally:
        release.set()
        thread.join(30)
    assert len(rig.index.records) == 1
    assert len(rig.embedder.batches) == 1


def test_stop_releases_a_batch_being_collected_and_finishes_in_flight(rig: Rig) -> None:
    rig.send(job("u", "a", "first"))
    worker = rig.worker(max_batch_size=10, max_batch_timeout=30, wait_time=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 30
    while rig.queue.depth().in_flight < 1:  # the batch has its job and waits for more
        assert time.monotonic() < deadline, "the job was never received"
        time.sleep(0.01)
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    # released at once: visible again without waiting for the 30 s visibility timeout
    assert rig.queue.depth().visible == 1


def test_disabled_consumer_receives_nothing(rig: Rig) -> None:
    class Off:
        def consumer_enabled(self) -> bool:
            return False

    rig.send(job("u", "a", "first"))
    worker = Worker(rig.queue, rig.processor, WorkerSettings(poll_interval=0.01), switch=Off())
    assert worker.run(drain=True).reason == "consumer disabled"
    assert rig.queue.depth().visible == 1 and rig.index.records == {}


class DepthCountingQueue:
    """The SQLite queue, counting depth readings; ``exact=False`` reports them as SQS does."""

    def __init__(self, queue: SqliteQueue, *, exact: bool) -> None:
        self.queue, self.exact, self.name, self.readings = queue, exact, queue.name, 0

    def depth(self) -> QueueDepth:
        self.readings += 1
        depth = self.queue.depth()
        return QueueDepth(depth.visible, depth.in_flight, exact=self.exact and depth.exact)

    def __getattr__(self, name: str) -> object:
        return getattr(self.queue, name)


@pytest.mark.parametrize(("exact", "readings"), [(True, 2), (False, 3)])
def test_a_drain_ends_on_one_empty_reading_of_an_exact_depth(
    rig: Rig, exact: bool, readings: int
) -> None:
    """SQLite counts exactly: the drain ends at its first empty reading; SQS's approximate
    depth must read empty twice in a row (no wait for a second look on the embedded default).
    The first reading, at the start, tells which kind of depth the queue has."""
    rig.send(*(job("u", f"n{i}", f"t{i}") for i in range(3)))
    queue = DepthCountingQueue(rig.queue, exact=exact)
    summary = rig.worker(queue, max_concurrency=1, wait_time=1).run(drain=True)
    assert summary.reason == "drained" and len(rig.index.records) == 3
    assert queue.readings == readings
