"""What one serving process holds, without HTTP: the plan's systems opened for serving, the
router, the model loaded at start, and (``worker=True``) the embed worker on a thread.

Every endpoint is a method here, so the HTTP layer (:mod:`constellation.api.routes`) only
parses, calls and renders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from constellation.embedders.provider import HttpEmbedder
from constellation.errors import ConstellationError, JobsRejected, Unavailable
from constellation.jobs import Job, Rejection, job_from_dict, parse_job
from constellation.migration.router import Routed, Router, WriteOutcome
from constellation.migration.source import Note
from constellation.monitoring.alerts import AlertEvaluator, Evaluation
from constellation.monitoring.metrics import ServiceMetrics
from constellation.monitoring.panels import DashboardData, read_dashboard
from constellation.monitoring.stats import ServiceStats, alert_values, read_stats
from constellation.plan import Plan
from constellation.producer import SendReport, send_jobs
from constellation.query import Searched
from constellation.services import Services
from constellation.wiring.migration import Migration

log = logging.getLogger("constellation.api")


@dataclass(frozen=True)
class Check:
    """One readiness check: a system, whether it answered as it should, and what it said."""

    name: str
    ok: bool
    detail: str


class ServiceRuntime:
    """The plan's queue, index, models, migration state and router for one serving process.

    ``worker=True`` opens the index for writing and runs the embed worker in this process (on
    the embedded default it must: the embedded index allows one writing process); otherwise the
    index is only read, beside workers running elsewhere.
    """

    def __init__(
        self, plan: Plan, *, worker: bool = False, services: Services | None = None
    ) -> None:
        self.plan = plan
        self.with_worker = worker
        self.services = services or Services(plan, write=worker)
        self.migration = Migration(
            plan, self.services, legacy_write=True, observe_query=self._observe_query
        )
        self.router: Router = self.migration.router()
        #: the worker's metrics (``worker=True``), exposed on ``/metrics``
        self.worker_metrics: ServiceMetrics | None = None
        self.model_state = "loading"
        self._stack = ExitStack()
        self._worker_thread: threading.Thread | None = None
        self._stop_worker: Callable[[], None] | None = None
        self._checks = ThreadPoolExecutor(8, thread_name_prefix="readyz")
        self._alerts = AlertEvaluator(plan.monitoring.alerts)
        self._alerts_lock = threading.Lock()

    # life ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the models in the background (``/readyz`` says so until they are), and start
        the worker when asked for."""
        threading.Thread(target=self._preload, name="preload", daemon=True).start()
        if self.with_worker:
            self._start_worker()

    def _preload(self) -> None:
        versions = {self.plan.default_version, self.plan.legacy.model_version}
        try:
            for version in sorted(versions):
                if self.plan.model(version).backend == "http":
                    continue  # nothing to load; /readyz asks the provider itself
                self.services.embedder(version).embed(["warm up"])
        except ConstellationError as exc:
            self.model_state = f"failed: {exc}"
            log.error("model failed to load: %s", exc, extra={"event": "model_error"})
            return
        self.model_state = "ready"
        log.info("model loaded", extra={"event": "model_ready"})

    def _start_worker(self) -> None:
        from constellation.wiring.worker import worker_session

        def keep(metrics: ServiceMetrics) -> None:
            self.worker_metrics = metrics

        worker = self._stack.enter_context(
            worker_session(
                self.plan,
                self.services,
                self.migration.state,
                failures=self.migration.failures,
                on_metrics=keep,
            )
        )

        def run() -> None:
            try:
                summary = worker.run()
                log.info("worker stopped (%s)", summary.reason, extra={"event": "worker_stop"})
            except Exception:
                log.exception("the in-process worker failed", extra={"event": "worker_error"})

        self._stop_worker = worker.stop
        self._worker_thread = threading.Thread(target=run, name="worker", daemon=True)
        self._worker_thread.start()

    def close(self) -> None:
        """Stop the worker (it finishes the batches it holds), then close every system."""
        if self._stop_worker is not None and self._worker_thread is not None:
            self._stop_worker()
            self._worker_thread.join(timeout=60)
        self._stack.close()
        self._checks.shutdown(wait=False, cancel_futures=True)
        self.router.close()
        self.migration.close()
        self.services.close()

    def _observe_query(self, seconds: float) -> None:
        if self.worker_metrics is not None:
            self.worker_metrics.observe_query(seconds)

    # endpoints -------------------------------------------------------------------------------
    def embed(self, items: Sequence[Any]) -> SendReport:
        """Validate every job as the worker will, then send them all; raises
        :class:`JobsRejected` (sending nothing) when any job breaks the contract."""
        versions = self.plan.models
        limit = self.plan.consumer.max_job_bytes
        jobs: list[tuple[int, Job | Rejection]] = []
        rejected: list[tuple[int, Rejection]] = []
        for index, item in enumerate(items):
            parsed = job_from_dict(item, versions=versions, now_ms=int(time.time() * 1000))
            if isinstance(parsed, Job):
                # The body the worker will receive, checked by the worker's own parser.
                parsed = parse_job(parsed.to_body(), versions=versions, max_bytes=limit)
            if isinstance(parsed, Rejection):
                rejected.append((index, parsed))
            jobs.append((index, parsed))
        if rejected:
            raise JobsRejected(rejected)
        with _named_errors():
            return send_jobs(self.services.queue, jobs, keep_ids=True)

    def query(
        self, text: str, user_id: str, top_k: int = 10, versions: Sequence[int] | None = None
    ) -> Searched:
        """The new index's answer (:meth:`Migration.search`): the versions the migration state
        reads, unless given."""
        with _named_errors():
            return self.migration.search(text, user_id, top_k, versions)

    def write_note(self, note: Note) -> WriteOutcome:
        """Write a note as the router does (old, both, or new by the write mode)."""
        with _named_errors():
            return self.router.write(note)

    def search(self, text: str, user_id: str, top_k: int = 10) -> Routed:
        """Search as the router does (read traffic, sticky per user, both while dual)."""
        with _named_errors():
            return self.router.route(text, user_id, top_k)

    def stats(self) -> ServiceStats:
        """The figures of ``constellation stats``."""
        with _named_errors():
            return read_stats(self.plan, self.services)

    def alerts(self) -> Evaluation:
        """The plan's alert rules evaluated on the current figures, as this process has seen
        them since it started (durations count from its first evaluation); nobody notified."""
        stats = self.stats()
        with self._alerts_lock:
            return self._alerts.evaluate(alert_values(stats), stats.at)

    def dashboard(self, range_seconds: float, points: int) -> DashboardData:
        """Every panel's series over the last ``range_seconds`` (``constellation dashboard``)."""
        with _named_errors():
            return read_dashboard(
                self.plan, self.services, range_seconds=range_seconds, points=points
            )

    def named_errors(self) -> AbstractContextManager[None]:
        """SQL errors of the state store and the logs beside it as the state store's 503."""
        return _named_errors()

    def readiness(self) -> list[Check]:
        """Queue, index, model, migration state (and the worker, when it runs here)."""
        checks: dict[str, Callable[[], str]] = {
            "queue": self._queue_check,
            "index": self._index_check,
            "state store": self._state_check,
        }
        for version, model in self.plan.models.items():
            if model.backend == "http":
                checks[f"embedding provider v{version}"] = partial(self._provider_check, version)
        timeout = self.plan.service.ready_timeout
        futures = {name: self._checks.submit(fn) for name, fn in checks.items()}
        results = [Check("model", self.model_state == "ready", self.model_state)]
        for name, future in futures.items():
            try:
                results.append(Check(name, True, future.result(timeout=timeout)))
            except FutureTimeout:
                results.append(Check(name, False, f"no answer within {timeout:g}s"))
            except Exception as exc:
                results.append(Check(name, False, str(exc) or type(exc).__name__))
        if self.with_worker:
            alive = self._worker_thread is not None and self._worker_thread.is_alive()
            results.append(Check("worker", alive, "running" if alive else "stopped"))
        return sorted(results, key=lambda c: c.name)

    def _provider_check(self, version: int) -> str:
        """The provider's circuit breaker here: closed, or open with why (a probe when one is
        due: a provider back is seen within its ``probe_interval``)."""
        embedder = self.services.embedder(version)
        if not isinstance(embedder, HttpEmbedder):
            return "not a provider here"
        return embedder.ready()

    def _queue_check(self) -> str:
        depth = self.services.queue.depth()
        return f"{self.plan.queue.name}: {depth.visible} waiting, {depth.in_flight} in flight"

    def _index_check(self) -> str:
        info = self.services.store.inspect(self.plan.index.name)
        if info is None:
            raise ConstellationError(
                f"index {self.plan.index.name} does not exist", "run `constellation provision`"
            )
        return f"{info.name}: {info.count} records"

    def _state_check(self) -> str:
        with _named_errors():
            s = self.migration.state.read()
        return f"phase {s.phase} ({s.status}), write mode {s.write_mode}, read {s.read_traffic:.0%}"


@contextmanager
def _named_errors() -> Iterator[None]:
    """Our errors by the system that failed (see :func:`component_of`), and SQL errors (the
    state store and the logs beside it) as the state store's."""
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise Unavailable(
            "state store", f"the migration state cannot be read: {type(exc).__name__}"
        ) from exc


def component_of(exc: BaseException) -> str | None:
    """Which system an error of ours came from, for a 503 naming it (None: not a system's)."""
    from constellation import errors

    if isinstance(exc, Unavailable):
        return exc.component
    if isinstance(exc, errors.DamagedFile):  # a damaged file serves nothing until restored
        damaged = {
            "the migration state": "state store",
            "the queue file": "queue",
            "the index file": "index",
            "the index": "index",
        }
        return damaged.get(exc.what, "storage")
    kinds: tuple[tuple[type[Exception], str], ...] = (
        (errors.QueueError, "queue"),
        (errors.VectorIndexError, "index"),
        (errors.ModelError, "model"),
        (errors.StateError, "state store"),
        (errors.SourceError, "notes source"),
    )
    for kind, name in kinds:
        if isinstance(exc, kind):
            return name
    return None
