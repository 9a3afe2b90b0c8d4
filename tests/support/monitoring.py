"""A small embedded service for monitoring tests: a plan, the real SQLite queues, a fake model
and an in-memory index behind a Services-shaped object, and helpers to fill the queue."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from constellation.index.port import IndexInfo, VectorIndex
from constellation.jobs import Job
from constellation.plan import Plan, load_plan
from constellation.queues.port import Outgoing, Queue, QueueSpec, Redrive
from constellation.queues.sqlite import SqliteBroker
from tests.fakes import MemoryIndex, RecordingEmbedder

PLAN = """\
name: notes
environment: test
data_dir: ./data
queue: {wait_time: 0, visibility_timeout: 30}
consumer: {max_batch_size: 8, max_batch_timeout: 0.2, max_concurrency: 2, poll_interval: 0.05}
monitoring:
  snapshot_interval: 0.2
"""

#: one malformed body per rejection reason used in the tests
MALFORMED = {
    "not_json": "{oops",
    "missing_field": json.dumps({"userId": "u", "noteId": "n", "text": "t", "created": 1}),
    "unknown_version": Job("u", "n", "t", 1, 9).to_body(),
}


def write_plan(folder: Path, extra: str = "") -> Path:
    """The test plan; ``extra`` lines continue its ``monitoring:`` section (indent 2)."""
    path = folder / "plan.yaml"
    path.write_text(PLAN + extra)
    return path


class StubStore:
    """The index store's ``inspect``: one in-memory index whose id is fixed at creation."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex

    def inspect(self, name: str) -> IndexInfo:
        return IndexInfo(name, 384, "cosine", 0, {}, "memory", id=self.id)


class StubServices:
    """What the worker and ``read_stats`` use from :class:`constellation.services.Services`."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.broker = SqliteBroker(plan.queue_path)
        dead = plan.queue.dead_letter
        if self.broker.inspect(dead) is None:
            self.broker.create(QueueSpec(dead, 30))
            self.broker.create(QueueSpec(plan.queue.name, 30, Redrive(dead, 4)))
        self.queue: Queue = self.broker.open(plan.queue.name)
        self.dead_letter: Queue = self.broker.open(dead)
        self.memory_index = MemoryIndex()
        self.store = StubStore()
        self.fake_embedder = RecordingEmbedder()

    def index(self, version: int | None = None) -> VectorIndex:
        return self.memory_index

    def embedder(self, version: int | None = None) -> RecordingEmbedder:
        return self.fake_embedder

    def query_embedder(self, version: int | None = None) -> RecordingEmbedder:
        return self.fake_embedder

    def upstreams(self) -> list[object]:
        return []

    def close(self) -> None:
        self.broker.close()


def open_stub(plan_path: Path) -> tuple[Plan, StubServices]:
    plan = load_plan(plan_path)
    return plan, StubServices(plan)


def send_mix(queue: Queue, good: int, malformed: dict[str, str] = MALFORMED) -> None:
    """``good`` valid jobs and one malformed body per reason."""
    bodies = [Job(f"u{i % 3}", f"n{i}", f"note number {i}", 1, 1).to_body() for i in range(good)]
    result = queue.send_batch([Outgoing(b) for b in [*bodies, *malformed.values()]])
    assert result.ok
