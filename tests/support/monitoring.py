"""A small embedded service for monitoring tests: a plan, the real SQLite queues, a fake model
and an in-memory index behind a Services-shaped object, and helpers to fill the queue."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from constellation.index.port import IndexInfo, VectorIndex
from constellation.jobs import Job
from constellation.monitoring.deployment import identify
from constellation.monitoring.metrics import ServiceMetrics
from constellation.monitoring.store import MetricsStore
from constellation.monitoring.worker_metrics import SnapshotWriter
from constellation.plan import Plan, load_plan
from constellation.queues.port import Outgoing, Queue, QueueSpec, Redrive
from constellation.queues.sqlite import SqliteBroker
from constellation.worker.events import MODEL_ERROR, PROCESSED, BatchTiming
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


def recorded(
    folder: Path,
    minutes: int,
    *,
    batch: int = 20,
    queue: int = 12,
    failures: int = 0,
    pause: tuple[int, int] | None = None,
) -> tuple[Plan, StubServices, float]:
    """``minutes`` of a worker's snapshots, one every 10 s of a fake clock, with full batches
    (``batch`` of ``max_batch_size`` 20, as the embedded default), a small queue and
    ``failures`` failed jobs a snapshot; ``pause=(first, last)``: no batch from minute
    ``first`` to minute ``last`` (an idle stretch). Returns the plan, the stub services and the
    clock's end."""
    path = write_plan(folder)
    path.write_text(path.read_text().replace("max_batch_size: 8", "max_batch_size: 20"))
    plan, services = open_stub(path)
    clock = [1_700_000_000.0]
    writer = SnapshotWriter(
        MetricsStore(plan.metrics_path),
        plan,
        "worker",
        lambda: clock[0],
        deployment=identify(plan, services),  # type: ignore[arg-type]
    )
    metrics = ServiceMetrics(max_batch_size=plan.consumer.max_batch_size)
    for step in range(minutes * 6):
        idle = pause is not None and pause[0] * 6 <= step < pause[1] * 6
        if not idle:
            for _ in range(batch):
                metrics.job_done(PROCESSED, 0.5 + step % 3, truncated=False)
            for _ in range(failures):
                metrics.job_failed(MODEL_ERROR, dead_lettered=False)
            metrics.batch_done(BatchTiming(batch, batch, batch, 0.05, 0.01, 0.1))
        metrics.set_queue(queue, 0)
        metrics.set_dead_letter(0)
        metrics.set_index_size(1, batch * step)
        writer.write(metrics.samples())
        clock[0] += 10
    return plan, services, clock[0]
