"""The embed service's Prometheus metrics, in a registry of their own.

:class:`ServiceMetrics` is a worker :class:`~constellation.worker.events.Recorder` (jobs, batches),
a query-latency hook for :func:`constellation.query.search` (``observe=metrics.observe_query``),
and the holder of the gauges that :func:`refresh_gauges` reads from the queues and the index.
Each instance owns a :class:`~prometheus_client.CollectorRegistry`: nothing is registered in the
global default registry, so two workers (or two tests) in one process never share counters.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from constellation.embedders.port import Upstream
from constellation.errors import ConstellationError
from constellation.jobs import REASONS
from constellation.monitoring import queries as q
from constellation.worker.events import (
    EMPTY,
    INDEX_ERROR,
    INPUT_REFUSED,
    MODEL_ERROR,
    PROCESSED,
    QUEUE_ERROR,
    TIMEOUT,
    BatchTiming,
)

if TYPE_CHECKING:
    from constellation.plan import Plan
    from constellation.services import Services

log = logging.getLogger("constellation.monitoring")

#: every error type a failed job can have; each is exported (at 0) from the start
ERROR_TYPES = (*REASONS, MODEL_ERROR, INDEX_ERROR, TIMEOUT, QUEUE_ERROR, INPUT_REFUSED)
#: why a job ended without an embedding: unchanged (or older than what is stored), or empty text
SKIP_REASONS = ("unchanged", "empty")

INF = float("inf")
#: enqueue → stored: from well under a second to a backlog of an hour (2 s is an alert threshold)
LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    INF,
)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, INF)
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, INF)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, INF)


def size_buckets(max_batch_size: int) -> tuple[float, ...]:
    """Buckets for batch sizes: one per size up to 64, then powers of two, always with the
    consumer's ``max_batch_size`` as a bound. A batch never exceeds it, so an interpolated
    percentile never does either (with fixed buckets (16, 32] a p95 of 31.2 was reported
    beside ``max_batch_size: 20``)."""
    small = range(1, min(max_batch_size, 64) + 1)
    large = (b for b in SIZE_BUCKETS if 64 < b < max_batch_size)
    return (*small, *large, *((max_batch_size,) if max_batch_size > 64 else ()), INF)


#: a snapshot of samples: metric sample name → (sorted label pairs → value)
Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]


def _name(sample: str) -> str:
    """prometheus-client wants counter names without ``_total``; it adds the suffix itself."""
    return sample.removesuffix("_total")


class ServiceMetrics:
    """Counters, histograms and gauges of one worker (or one query process)."""

    def __init__(self, *, max_batch_size: int = 20) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.processed = Counter(_name(q.PROCESSED), "Jobs embedded and stored.", registry=r)
        self.skipped = Counter(
            _name(q.SKIPPED),
            "Jobs done without the model: unchanged or older than stored, or empty text.",
            ["reason"],
            registry=r,
        )
        self.failed = Counter(
            _name(q.FAILED), "Failed job attempts by error type.", ["error_type"], registry=r
        )
        self.dead_lettered = Counter(
            _name(q.DEAD_LETTERED),
            "Jobs moved to the dead-letter queue, by error type.",
            ["error_type"],
            registry=r,
        )
        self.truncated = Counter(
            _name(q.TRUNCATED), "Jobs whose text was cut to the model's length.", registry=r
        )
        self.deferred = Counter(
            _name(q.DEFERRED),
            "Jobs given back to the queue, uncounted, while the embedding provider was out.",
            registry=r,
        )
        for error_type in ERROR_TYPES:
            self.failed.labels(error_type)
            self.dead_lettered.labels(error_type)
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, buckets=buckets, registry=r)

        self.job_latency = histogram(
            q.JOB_LATENCY, "Per job: seconds from enqueue to done (stored).", LATENCY_BUCKETS
        )
        self.batch_duration = histogram(
            q.BATCH_DURATION,
            "Per batch: seconds from full (or closed by max_batch_timeout) to acknowledged; "
            "not the wait to fill it, nor a model's load.",
            DURATION_BUCKETS,
        )
        self.model_time = histogram(
            q.MODEL_TIME, "Per batch: seconds in the embedding model.", DURATION_BUCKETS
        )
        self.upsert_time = histogram(
            q.UPSERT_TIME, "Per batch: seconds writing to the vector index.", DURATION_BUCKETS
        )
        sizes = size_buckets(max_batch_size)
        self.embed_batch = histogram(
            q.EMBED_BATCH,
            "Texts per batch sent to the embedding model (batches in flight may share a call).",
            sizes,
        )
        self.upsert_batch = histogram(q.UPSERT_BATCH, "Records per vector-index upsert.", sizes)
        self.query_latency = histogram(
            q.QUERY_LATENCY, "Per search: seconds from query text to results.", QUERY_BUCKETS
        )
        self.queue_depth = Gauge(
            q.QUEUE_DEPTH, "Messages on the embed queue (waiting + in flight).", registry=r
        )
        self.queue_in_flight = Gauge(
            q.QUEUE_IN_FLIGHT, "Messages received but not yet deleted.", registry=r
        )
        self.dead_letter_depth = Gauge(
            q.DEAD_LETTER_DEPTH, "Messages on the dead-letter queue.", registry=r
        )
        self.index_size = Gauge(
            q.INDEX_SIZE, "Records in the vector index by model version.", ["version"], registry=r
        )
        self.model_load = Gauge(
            q.MODEL_LOAD,
            "Seconds the last load of each model version took (never part of a batch's time).",
            ["version"],
            registry=r,
        )
        self.provider_unavailable = Gauge(
            q.PROVIDER_UNAVAILABLE,
            "1 while a model version's embedding provider is unavailable (its circuit breaker "
            "open: the worker receives nothing), else 0.",
            ["version"],
            registry=r,
        )
        #: gauges that hold a real reading (an unread gauge is 0, which is not a reading)
        self._read: set[str] = set()

    # the worker's Recorder -------------------------------------------------------------------
    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        if outcome == PROCESSED:
            self.processed.inc()
        else:
            self.skipped.labels("empty" if outcome == EMPTY else "unchanged").inc()
        if truncated:
            self.truncated.inc()
        if latency_seconds is not None:
            self.job_latency.observe(latency_seconds)

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        self.failed.labels(error_type).inc()
        if dead_lettered:
            self.dead_lettered.labels(error_type).inc()

    def job_deferred(self) -> None:
        self.deferred.inc()

    def batch_done(self, timing: BatchTiming) -> None:
        for version, seconds in timing.loads:
            self.model_load.labels(str(version)).set(seconds)
            self._read.add(q.MODEL_LOAD)
        self.batch_duration.observe(timing.total_seconds)
        if timing.embedded:
            self.embed_batch.observe(timing.embedded)
            self.model_time.observe(timing.model_seconds)
        calls = (timing.upserted,) if timing.upsert_calls is None else timing.upsert_calls
        for size in calls:
            if size:
                self.upsert_batch.observe(size)
        if timing.upserted:
            self.upsert_time.observe(timing.upsert_seconds)

    # the query path ----------------------------------------------------------------------------
    def observe_query(self, seconds: float) -> None:
        """Pass as ``search(..., observe=metrics.observe_query)``."""
        self.query_latency.observe(seconds)

    # gauges ------------------------------------------------------------------------------------
    def set_queue(self, total: int, in_flight: int) -> None:
        self.queue_depth.set(total)
        self.queue_in_flight.set(in_flight)
        self._read.update((q.QUEUE_DEPTH, q.QUEUE_IN_FLIGHT))

    def set_dead_letter(self, total: int) -> None:
        self.dead_letter_depth.set(total)
        self._read.add(q.DEAD_LETTER_DEPTH)

    def set_provider_unavailable(self, version: int, unavailable: bool) -> None:
        self.provider_unavailable.labels(str(version)).set(1 if unavailable else 0)
        self._read.add(q.PROVIDER_UNAVAILABLE)

    def set_index_size(self, version: int, count: int) -> None:
        self.index_size.labels(str(version)).set(count)
        self._read.add(q.INDEX_SIZE)

    def samples(self) -> Samples:
        """Every sample as /metrics shows it (less ``_created`` stamps and unread gauges)."""
        out: Samples = defaultdict(dict)
        for family in self.registry.collect():
            if family.type == "gauge" and family.name not in self._read:
                continue
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                out[sample.name][tuple(sorted(sample.labels.items()))] = float(sample.value)
        return dict(out)


def refresh_gauges(
    metrics: ServiceMetrics,
    plan: Plan,
    services: Services,
    sizes: IndexSizes | None = None,
    *,
    force: bool = True,
) -> None:
    """Read queue depths and index sizes into the gauges; a failed read keeps the last value.

    ``sizes`` (the worker's periodic refresh) bounds what counting the index costs; ``force``
    counts now whatever it cost last time (an explicit refresh)."""
    try:
        depth = services.queue.depth()
        metrics.set_queue(depth.total, depth.in_flight)
        metrics.set_dead_letter(services.dead_letter.depth().total)
    except ConstellationError as exc:
        log.debug("could not read queue depths: %s", exc)
    for version, model in plan.models.items():
        if model.backend == "http":  # the breaker of this process's provider client
            embedder = services.embedder(version)
            if isinstance(embedder, Upstream):
                metrics.set_provider_unavailable(version, embedder.outage() is not None)
    counted = index_sizes(plan, services) if sizes is None else sizes.read(plan, services, force)
    for version, count in counted.items():
        metrics.set_index_size(version, count)


class IndexSizes:
    """Records per model version, counted again only when that is cheap enough.

    Two versions sharing one index (the embedded default declares two) are counted with a
    read of every id (Chroma has no filtered count), which grows with the index, and Chroma
    holds Python's GIL while it reads: every 10 s, that would take a growing share of the
    worker it measures. So a count that took ``t`` seconds is repeated no sooner than
    ``t / share`` seconds later, keeping counting to ``share`` of the time; between, the last
    counts stand.
    """

    def __init__(self, share: float = 0.02, clock: Callable[[], float] = time.monotonic) -> None:
        self.share = share
        self.clock = clock
        self._last: dict[int, int] | None = None
        self._next = 0.0

    def read(self, plan: Plan, services: Services, force: bool = False) -> dict[int, int]:
        """The counts: taken now when forced, the first time, or once their cost allows."""
        now = self.clock()
        if self._last is not None and not force and now < self._next:
            return self._last
        sizes = index_sizes(plan, services)
        took = self.clock() - now
        self._last, self._next = sizes, now + took / self.share
        return sizes


def index_sizes(plan: Plan, services: Services) -> dict[int, int]:
    """Records per model version, for the versions whose index can be read now."""
    by_index: dict[str, list[int]] = defaultdict(list)
    for version in sorted(plan.models):
        by_index[plan.index_name_for(version)].append(version)
    sizes: dict[int, int] = {}
    for versions in by_index.values():
        try:
            index = services.index(versions[0])
            if len(versions) == 1:
                # The only version in its index: a plain count, not a scan of every id.
                sizes[versions[0]] = index.count()
            else:
                for version in versions:
                    sizes[version] = index.count(version=version)
        except ConstellationError as exc:
            log.debug("could not count index records: %s", exc)
    return sizes
