"""Running the embedding service: the worker, with the migration's consumer switch."""

from __future__ import annotations

from collections.abc import Callable

from constellation.plan import Plan
from constellation.services import Services
from constellation.worker import RunSummary, WorkerStatus, build_worker, stop_on_signals
from constellation.worker.events import Recorder
from constellation.worker.runner import ConsumerSwitch


def run_worker(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    *,
    drain: bool = False,
    max_messages: int | None = None,
    on_status: Callable[[WorkerStatus], None] | None = None,
    recorders: tuple[Recorder, ...] = (),
) -> RunSummary:
    """Run the batching embed worker until stopped (SIGINT/SIGTERM), drained or done."""
    worker = build_worker(plan, services, switch=switch, recorders=recorders, on_status=on_status)
    with stop_on_signals(worker):
        return worker.run(drain=drain, max_messages=max_messages)
