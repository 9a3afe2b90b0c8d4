"""The drain step: wait until the queue is empty, with a worker in this process (the embedded
default, where one process may write the index) or by watching the running workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from constellation.errors import StateError
from constellation.queues.port import Queue
from constellation.wiring.migration import Migration
from constellation.wiring.worker import run_worker
from constellation.worker import RunSummary, WorkerStatus
from phases.steps import Check

#: the drain's progress bar: records stored (or skipped, emptied, dead-lettered) of the jobs
#: the queue held when the drain began
DRAIN_BAR = "drain: stored of sent"


def in_process_worker(
    m: Migration,
    on_status: Callable[[WorkerStatus], None] | None,
    on_progress: Callable[[str, int | None, int], None] | None = None,
) -> Callable[[], RunSummary]:
    """A function that drains the queue with a worker in this process; ``on_progress`` gets
    the :data:`DRAIN_BAR` bar (its total: what the queue held when the worker first reported)."""
    if on_progress is not None:
        on_status = drain_progress(m.services.queue, on_progress, on_status)
    return partial(
        run_worker,
        m.plan,
        m.services,
        m.state,
        drain=True,
        failures=m.failures,
        on_status=on_status,
    )


def drain_progress(
    queue: Queue,
    on_progress: Callable[[str, int | None, int], None],
    then: Callable[[WorkerStatus], None] | None = None,
) -> Callable[[WorkerStatus], None]:
    """A worker status callback that advances the drain's bar by the jobs finished since the
    last status, out of those queued when it began."""
    seen = [0]
    total = [-1]

    def on_status(status: WorkerStatus) -> None:
        stats = status.stats
        counts = [stats.get(k) for k in ("processed", "skipped", "empty")]
        dead = stats.get("dead_lettered")
        done = sum(n for n in counts if isinstance(n, int))
        done += sum(dead.values()) if isinstance(dead, dict) else 0
        if total[0] < 0:
            depth = status.queue_depth or queue.depth()
            total[0] = done + depth.total
        on_progress(DRAIN_BAR, max(total[0], done), done - seen[0])
        seen[0] = done
        if then is not None:
            then(status)

    return on_status


def embedded(m: Migration) -> bool:
    """True on the embedded default: the index takes one writing process, so work that needs
    the worker runs it here."""
    return m.plan.queue.adapter == "sqlite" and m.plan.index.url is None


@dataclass
class Drain:
    """Wait until the queue is empty: run the worker in-process, or wait for running workers."""

    run_worker: Callable[[], RunSummary] | None
    queue: Queue
    poll: float = 2.0
    timeout: float | None = None
    on_status: Callable[[WorkerStatus], None] | None = None
    summary: RunSummary | None = None
    sleep: Callable[[float], None] = time.sleep

    resource = "queue"

    def describe(self) -> str:
        how = "an in-process worker" if self.run_worker else "the running workers"
        return f"wait until {how} drain the queue"

    def check(self) -> Check:
        return Check("update", self.describe())

    def apply(self) -> str:
        if self.run_worker is not None:
            self.summary = self.run_worker()
            return f"drained by an in-process worker ({self.summary.reason})"
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while (depth := self.queue.depth()).total:
            if deadline is not None and time.monotonic() > deadline:
                raise StateError(f"the queue did not drain: {depth.total} messages left")
            self.sleep(self.poll)
        return "drained by the running workers"

    def undo(self) -> None:
        pass
