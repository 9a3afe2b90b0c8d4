"""Running the embedding service: the worker, with the migration's consumer switch."""

from __future__ import annotations

from collections.abc import Callable

from constellation.monitoring.session import DEFAULT_HOST, worker_metrics
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
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_HOST,
    on_metrics_url: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run the batching embed worker until stopped (SIGINT/SIGTERM), drained or done.

    Its metrics are recorded as snapshots in the plan's metrics file (embedded default) and,
    with ``metrics_port``, served on ``http://metrics_host:port/metrics``.
    """
    with worker_metrics(plan, services, port=metrics_port, host=metrics_host) as metrics:
        if metrics.url and on_metrics_url:
            on_metrics_url(metrics.url)
        worker = build_worker(
            plan,
            services,
            switch=switch,
            recorders=(metrics.metrics, *recorders),
            on_status=on_status,
        )
        with stop_on_signals(worker):
            return worker.run(drain=drain, max_messages=max_messages)
