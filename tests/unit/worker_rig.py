"""The worker test rig: a SQLite queue pair, a recording fake model and an in-memory index."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from constellation.embedders.port import Upstream
from constellation.jobs import Job
from constellation.queues.port import Message, Outgoing, QueueSpec, Redrive
from constellation.queues.sqlite import SqliteBroker, SqliteQueue
from constellation.worker import BatchProcessor, Worker, WorkerSettings, WorkerStats
from tests.fakes import MemoryIndex, RecordingEmbedder


def job(user: str, note: str, text: str, created: int = 1, version: int = 1) -> str:
    return Job(user, note, text, created, version).to_body()


class Rig:
    """A queue pair, a fake model and index, and a worker factory."""

    def __init__(self, tmp_path: Path, *, max_retries: int = 3, visibility: int = 30) -> None:
        self.broker = SqliteBroker(tmp_path / "queue.db")
        self.broker.create(QueueSpec("dlq", visibility))
        self.broker.create(QueueSpec("q", visibility, Redrive("dlq", max_retries + 1)))
        self.queue: SqliteQueue = self.broker.open("q")
        self.dlq: SqliteQueue = self.broker.open("dlq")
        self.embedder: Any = RecordingEmbedder()
        self.index = MemoryIndex()
        self.stats = WorkerStats()
        self.processor = BatchProcessor(
            queue=self.queue,
            dead_letter=self.dlq,
            index_for=lambda v: self.index,
            embedder_for=lambda v: self.embedder,
            models={1: "fake-model", 2: "fake-model-2"},
            max_job_bytes=4096,
            max_retries=max_retries,
            recorder=self.stats,
        )

    def send(self, *bodies: str) -> None:
        result = self.queue.send_batch([Outgoing(b) for b in bodies])
        assert result.ok

    def worker(
        self,
        queue: object = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        upstreams: Sequence[Upstream] = (),
        **settings: float,
    ) -> Worker:
        """A worker on the rig's queue (or ``queue``, a wrapper of it), on ``clock``."""
        defaults = dict(
            max_batch_size=8,
            max_batch_timeout=0.2,
            max_concurrency=2,
            wait_time=0.1,
            visibility_timeout=30,
            poll_interval=0.05,
        )
        defaults.update(settings)
        return Worker(
            queue or self.queue,  # type: ignore[arg-type]
            self.processor,
            WorkerSettings(**defaults),  # type: ignore[arg-type]
            stats=self.stats,
            clock=clock,
            upstreams=upstreams,
        )

    def dead_letters(self) -> list[Message]:
        return self.dlq.receive(max_messages=100)
