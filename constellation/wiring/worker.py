"""Running the embedding service: the worker, with metrics, the consumer switch and the
failure log wired in. Every worker Constellation starts (``worker run``, ``migrate phase 1
--wait``, ``verify --inline``, the demo) comes from :func:`worker_session`.

It sits above :mod:`constellation.worker` and :mod:`constellation.monitoring`, which joins
them: the worker knows nothing of monitoring, monitoring records what the worker reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from constellation.index import lock
from constellation.monitoring.metrics import ServiceMetrics
from constellation.monitoring.worker_metrics import DEFAULT_HOST, worker_metrics
from constellation.plan import Plan
from constellation.services import Services
from constellation.worker import RunSummary, Worker, WorkerSettings, WorkerStatus, build_worker
from constellation.worker.control import ConsumerSwitch, stop_on_signals
from constellation.worker.events import FailureSink, Recorder


@contextmanager
def worker_session(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    *,
    failures: FailureSink | None = None,
    on_status: Callable[[WorkerStatus], None] | None = None,
    recorders: tuple[Recorder, ...] = (),
    settings: WorkerSettings | None = None,
    metrics_port: int | None = None,
    metrics_host: str = DEFAULT_HOST,
    on_metrics_url: Callable[[str], None] | None = None,
    on_metrics: Callable[[ServiceMetrics], None] | None = None,
) -> Iterator[Worker]:
    """A worker whose metrics are recorded (snapshots; ``/metrics`` with a port) while in use.

    On the embedded default the index folder's writer lock is taken first, so a second writing
    process is refused here, at start, with the lock's message (holder's pid, ``chroma run``,
    ``index.url``), instead of failing every batch it receives. ``on_metrics`` receives the
    worker's metrics (a process that serves its own ``/metrics``, such as ``constellation serve
    --worker``, exposes them there).
    """
    held = lock.acquire(plan.index_path) if plan.index.url is None else None
    try:
        if held is not None:
            # Opened now: a damaged index file is named at the start (exit 1), not met by the
            # first batch, and not missed by a drain of an empty queue.
            _ = services.store
        with worker_metrics(plan, services, port=metrics_port, host=metrics_host) as metrics:
            if metrics.url and on_metrics_url:
                on_metrics_url(metrics.url)
            if on_metrics:
                on_metrics(metrics.metrics)
            yield build_worker(
                plan,
                services,
                switch=switch,
                recorders=(metrics.metrics, *recorders),
                failures=failures,
                on_status=on_status,
                settings=settings,
            )
    finally:
        if held is not None:
            held.release()


def run_worker(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    *,
    drain: bool = False,
    max_messages: int | None = None,
    failures: FailureSink | None = None,
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
    with (
        worker_session(
            plan,
            services,
            switch,
            failures=failures,
            on_status=on_status,
            recorders=recorders,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            on_metrics_url=on_metrics_url,
        ) as worker,
        stop_on_signals(worker.stop),
    ):
        return worker.run(drain=drain, max_messages=max_messages)
