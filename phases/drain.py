"""The drain step: wait until the queue is empty, with a worker in this process (the embedded
default, where one process may write the index) or by watching the running workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from constellation.errors import StateError
from constellation.migration.runtime import Migration
from constellation.queues.port import Queue
from constellation.worker import RunSummary, WorkerStatus
from constellation.worker_session import run_worker
from phases.steps import Check


def in_process_worker(
    m: Migration, on_status: Callable[[WorkerStatus], None] | None
) -> Callable[[], RunSummary]:
    """A function that drains the queue with a worker in this process."""

    return partial(
        run_worker,
        m.plan,
        m.services,
        m.state,
        drain=True,
        failures=m.failures,
        on_status=on_status,
    )


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
