"""The queue contract on the SQLite adapter: a file, no server.

Concurrent receivers are separate processes, each with its own broker on the shared file.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from constellation.queues.port import Broker
from constellation.queues.sqlite import SqliteBroker
from tests.contract.queue_contract import PAUSE, QueueContract
from tests.contract.queue_fifo_contract import FifoQueueContract


def _sqlite_receiver(path: str, name: str, barrier: Any, results: Any) -> None:
    """One receiver process: its own broker on the shared file, one message per receive."""
    broker = SqliteBroker(Path(path))
    queue = broker.open(name)
    barrier.wait(30)
    taken: list[str] = []
    while batch := queue.receive(max_messages=1, visibility_timeout=30):
        taken.extend(message.id for message in batch)
        time.sleep(PAUSE)
    results.put(taken)
    broker.close()


class TestSqliteQueue(QueueContract, FifoQueueContract):
    @pytest.fixture
    def broker(self, tmp_path: Path) -> Iterator[Broker]:
        broker = SqliteBroker(tmp_path / "queue.db")
        yield broker
        broker.close()

    def receive_concurrently(self, broker: Broker, name: str) -> list[list[str]]:
        # Separate processes, as several workers on one machine would be: the file's locks
        # must keep them apart, not a lock inside one Python process.
        assert isinstance(broker, SqliteBroker)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        results = context.Queue()
        processes = [
            context.Process(
                target=_sqlite_receiver, args=(str(broker.path), name, barrier, results)
            )
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        taken = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(10)
            assert process.exitcode == 0
        return taken
