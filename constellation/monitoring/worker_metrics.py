"""A worker's metrics for the length of a run: ``/metrics``, gauge refresh, snapshots.

:func:`worker_metrics` reads the gauges once before the worker starts and then every
``monitoring.snapshot_interval`` seconds; for the embedded default (no ``prometheus_url``) it
also appends a snapshot each time (skipping one identical to the last), and always a final one
when the run ends, so ``worker run --drain`` followed by ``stats`` is exact. With a port it
serves ``/metrics`` (loopback by default) from the worker's own registry.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from constellation.errors import ConstellationError, MonitoringError
from constellation.monitoring.deployment import Deployment, identify
from constellation.monitoring.metrics import IndexSizes, Samples, ServiceMetrics, refresh_gauges
from constellation.monitoring.store import (
    RETENTION_SECONDS,
    Instance,
    MetricsStore,
    new_instance_id,
)
from constellation.plan import Plan
from constellation.services import Services

log = logging.getLogger("constellation.monitoring")

#: the default address of ``/metrics``: loopback, so nothing is exposed by accident
DEFAULT_HOST = "127.0.0.1"


class SnapshotWriter:
    """Appends one instance's snapshots to the metrics file; errors are logged, not raised.

    The instance is recorded with the deployment it runs against (None: unknown), which is
    what ``stats`` counts by."""

    def __init__(
        self,
        store: MetricsStore,
        plan: Plan,
        role: str,
        clock: Callable[[], float] = time.time,
        *,
        deployment: Deployment | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.instance = new_instance_id()
        self._last: Samples | None = None
        self._pruned = 0.0
        now = clock()
        self._safely(
            "register",
            lambda: store.register(
                Instance(
                    self.instance,
                    plan.name,
                    plan.environment,
                    role,
                    socket.gethostname(),
                    os.getpid(),
                    now,
                    now,
                ),
                deployment,
            ),
        )

    def write(self, samples: Samples) -> None:
        if samples == self._last:
            return  # an idle worker adds nothing; its last snapshot still holds
        at = self.clock()
        self._safely("append", lambda: self.store.append(self.instance, at, samples))
        self._last = samples
        if at - self._pruned > 3600:
            self._pruned = at
            self._safely("prune", lambda: self.store.prune(at - RETENTION_SECONDS))

    def finish(self) -> None:
        self._safely("finish", lambda: self.store.finish(self.instance, self.clock()))

    def _safely(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except ConstellationError as exc:
            log.warning(
                "metrics snapshot (%s) failed: %s", what, exc, extra={"event": "snapshot_error"}
            )


@dataclass
class MonitoredRun:
    """What a monitored run exposes: its metrics, its ``/metrics`` URL, its instance id."""

    metrics: ServiceMetrics
    url: str | None = None
    instance: str | None = None
    _tick: Callable[[], None] = field(default=lambda: None, repr=False)

    def tick(self) -> None:
        """Refresh the gauges and snapshot now (what the background thread does each interval)."""
        self._tick()


@contextmanager
def worker_metrics(
    plan: Plan,
    services: Services,
    *,
    port: int | None = None,
    host: str = DEFAULT_HOST,
    clock: Callable[[], float] = time.time,
    interval: float | None = None,
) -> Iterator[MonitoredRun]:
    """Metrics for one worker run (``port``: serve ``/metrics``; 0 picks a free port)."""
    metrics = ServiceMetrics(max_batch_size=plan.consumer.max_batch_size)
    # Bind first: a busy port fails the run before anything else starts.
    server = _serve(metrics, host, port) if port is not None else None
    try:
        writer = (
            SnapshotWriter(
                MetricsStore(plan.metrics_path),
                plan,
                "worker",
                clock,
                deployment=identify(plan, services),
            )
            if not plan.monitoring.prometheus_url
            else None
        )
        lock = threading.Lock()
        sizes = IndexSizes()

        def tick(force: bool = True) -> None:
            with lock:
                refresh_gauges(metrics, plan, services, sizes, force=force)
                if writer is not None:
                    writer.write(metrics.samples())

        run = MonitoredRun(metrics, instance=writer.instance if writer else None, _tick=tick)
        if server is not None:
            run.url = f"http://{_url_host(host)}:{server.server_port}/metrics"
        tick()
        stop = threading.Event()
        every = max(0.05, plan.monitoring.snapshot_interval if interval is None else interval)

        def loop() -> None:
            while not stop.wait(every):
                try:
                    tick(force=False)
                except Exception:  # a metrics hiccup must never take the worker down
                    log.exception("metrics refresh failed", extra={"event": "metrics_error"})

        thread = threading.Thread(target=loop, name="metrics", daemon=True)
        thread.start()
        try:
            yield run
        finally:
            stop.set()
            thread.join(timeout=30)
            try:
                tick()  # the final snapshot: what the run did, exactly
            except Exception:
                log.exception("final metrics snapshot failed", extra={"event": "metrics_error"})
            if writer is not None:
                writer.finish()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _serve(metrics: ServiceMetrics, host: str, port: int) -> WSGIServer:
    try:
        server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise MonitoringError(
            f"cannot serve metrics on {host}:{port}: {exc}",
            "choose another --metrics-port (0 picks a free one)",
        ) from exc
    return server


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextmanager
def query_metrics(
    plan: Plan,
    services: Services | None = None,
    *,
    clock: Callable[[], float] = time.time,
    interval: float | None = None,
) -> Iterator[Callable[[float], None]]:
    """A query-latency hook for ``search(..., observe=...)``; its observations are written as
    snapshots (embedded default only), counted for the deployment ``services`` reach: at the
    end, and with ``interval`` (a long-lived process: the app's router, the demo) also every
    ``interval`` seconds, so ``stats`` sees searches while they happen."""
    metrics = ServiceMetrics(max_batch_size=plan.consumer.max_batch_size)
    if plan.monitoring.prometheus_url:
        yield metrics.observe_query
        return
    deployment = identify(plan, services) if services is not None else None
    writer = SnapshotWriter(
        MetricsStore(plan.metrics_path), plan, "query", clock, deployment=deployment
    )
    lock = threading.Lock()

    def snapshot() -> None:
        with lock:
            writer.write(metrics.samples())

    stop = threading.Event()

    def loop() -> None:
        while interval is not None and not stop.wait(max(0.05, interval)):
            try:
                snapshot()
            except Exception:  # metrics must never take searches down
                log.exception("query metrics snapshot failed", extra={"event": "metrics_error"})

    thread = threading.Thread(target=loop, name="query-metrics", daemon=True)
    if interval is not None:
        thread.start()
    try:
        yield metrics.observe_query
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=30)
        snapshot()
        writer.finish()
