"""The service's figures in one call: what ``stats`` shows and the migration gates read.

Queue and dead-letter depths and index sizes are read live from the plan's queues and index
(falling back to the last recorded gauge when they cannot be reached); job counts, the error
rate, percentiles and batch sizes come from the plan's metrics (snapshots or Prometheus) (snapshots or Prometheus).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from constellation.errors import ConstellationError
from constellation.monitoring import queries as q
from constellation.monitoring.metrics import index_sizes
from constellation.monitoring.queries import Increase, Latest, Mean, Quantile, Query, Total
from constellation.monitoring.readings import MetricReader, Scope, open_reader
from constellation.plan import Plan
from constellation.services import Services
from constellation.timefields import EPOCH_SECONDS


@dataclass(frozen=True)
class Depth:
    """A queue's messages (None: it could not be read, nor was it recorded)."""

    name: str
    visible: int | None
    in_flight: int | None
    total: int | None


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds (None: nothing observed in the window)."""

    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class JobTotals:
    """Counts since each worker started (snapshots: every worker recorded; Prometheus: live ones)."""

    processed: int
    skipped: int
    failed: int
    dead_lettered: int
    truncated: int
    skipped_by_reason: dict[str, int]
    failed_by_reason: dict[str, int]
    dead_lettered_by_reason: dict[str, int]
    #: jobs given back to the queue, uncounted, while an embedding provider was unavailable
    deferred: int = 0


@dataclass(frozen=True)
class WindowStats:
    """Rates and distributions over the last ``seconds``."""

    seconds: float
    #: job attempts that ended (stored, skipped or failed)
    jobs: int
    failed: int
    error_rate: float | None
    processing_ms: Percentiles
    batch_ms: Percentiles
    mean_embedding_batch_size: float | None
    mean_upsert_batch_size: float | None
    query_p95_ms: float | None


@dataclass(frozen=True)
class ServiceStats:
    """Everything ``constellation stats`` reports."""

    at: float = field(metadata=EPOCH_SECONDS)
    source: str
    queue: Depth
    dead_letter: Depth
    jobs: JobTotals
    window: WindowStats
    index_size: dict[int, int]
    #: model versions whose embedding provider a worker reports unavailable now (its breaker
    #: open: that worker receives nothing)
    providers_unavailable: list[int] = field(default_factory=list)
    #: what the totals and the window count: the deployment, and since when
    scope: Scope | None = None
    notes: list[str] = field(default_factory=list)


def _percentiles(histogram: str) -> dict[str, Query]:
    return {p: Quantile(int(p[1:]) / 100, histogram, 1000.0) for p in ("p50", "p95", "p99")}


_TOTALS: dict[str, Query] = {
    "processed": Total(q.PROCESSED),
    "skipped": Total(q.SKIPPED, "reason"),
    "failed": Total(q.FAILED, "error_type"),
    "dead_lettered": Total(q.DEAD_LETTERED, "error_type"),
    "truncated": Total(q.TRUNCATED),
    "deferred": Total(q.DEFERRED),
}
_WINDOW: dict[str, Query] = {
    "w_processed": Increase(q.PROCESSED),
    "w_skipped": Increase(q.SKIPPED),
    "w_failed": Increase(q.FAILED),
    "error_rate": q.ERROR_RATE,
    **{f"processing_{k}": v for k, v in _percentiles(q.JOB_LATENCY).items()},
    **{f"batch_{k}": v for k, v in _percentiles(q.BATCH_DURATION).items()},
    "embed_batch": Mean(q.EMBED_BATCH),
    "upsert_batch": Mean(q.UPSERT_BATCH),
    "query_p95": q.QUERY_P95_MS,
}
_GAUGES: dict[str, Query] = {
    "queue": Latest(q.QUEUE_DEPTH),
    "in_flight": Latest(q.QUEUE_IN_FLIGHT),
    "dead_letter": Latest(q.DEAD_LETTER_DEPTH),
    "index": Latest(q.INDEX_SIZE, "version"),
    "provider": Latest(q.PROVIDER_UNAVAILABLE, "version"),
}


def read_stats(
    plan: Plan,
    services: Services,
    window_seconds: float | None = None,
    *,
    now: float | None = None,
    reader: MetricReader | None = None,
) -> ServiceStats:
    """Queue and dead-letter depth, job counts, error rate, latency percentiles, index size."""
    at = time.time() if now is None else now
    window = plan.monitoring.window if window_seconds is None else window_seconds
    reader = reader or open_reader(plan, services)
    notes: list[str] = []
    if reader.scope.note:
        notes.append(reader.scope.note)
    answers = reader.instant({**_TOTALS, **_WINDOW, **_GAUGES}, at, window)
    if not any(answers[k] for k in _TOTALS) and not any(answers[k] for k in _GAUGES):
        notes.append(
            f"no metrics recorded yet ({reader.description}); workers record them while "
            "they run (`constellation worker run`)"
        )

    def one(key: str) -> float | None:
        return answers[key].get("")

    def count(key: str) -> int:
        return round(sum(answers[key].values()))

    def by(key: str) -> dict[str, int]:
        return {k: round(v) for k, v in sorted(answers[key].items()) if round(v)}

    queue, dead_letter = _depths(plan, services, answers, notes)
    sizes = _index_sizes(plan, services, answers, notes)
    window_failed = count("w_failed")
    return ServiceStats(
        at=at,
        source=reader.description,
        queue=queue,
        dead_letter=dead_letter,
        jobs=JobTotals(
            processed=count("processed"),
            skipped=count("skipped"),
            failed=count("failed"),
            dead_lettered=count("dead_lettered"),
            truncated=count("truncated"),
            skipped_by_reason=by("skipped"),
            failed_by_reason=by("failed"),
            dead_lettered_by_reason=by("dead_lettered"),
            deferred=count("deferred"),
        ),
        window=WindowStats(
            seconds=window,
            jobs=count("w_processed") + count("w_skipped") + window_failed,
            failed=window_failed,
            error_rate=_round(one("error_rate"), 4),
            processing_ms=Percentiles(
                *(_round(one(f"processing_{p}"), 1) for p in ("p50", "p95", "p99"))
            ),
            batch_ms=Percentiles(*(_round(one(f"batch_{p}"), 1) for p in ("p50", "p95", "p99"))),
            mean_embedding_batch_size=_round(one("embed_batch"), 2),
            mean_upsert_batch_size=_round(one("upsert_batch"), 2),
            query_p95_ms=_round(one("query_p95"), 1),
        ),
        index_size=sizes,
        providers_unavailable=sorted(
            int(v) for v, down in answers["provider"].items() if v.isdigit() and down
        ),
        scope=reader.scope,
        notes=notes,
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _depths(
    plan: Plan, services: Services, answers: dict[str, dict[str, float]], notes: list[str]
) -> tuple[Depth, Depth]:
    try:
        live = services.queue.depth()
        queue = Depth(plan.queue.name, live.visible, live.in_flight, live.total)
    except ConstellationError as exc:
        total, in_flight = answers["queue"].get(""), answers["in_flight"].get("")
        queue = Depth(
            plan.queue.name,
            None if total is None or in_flight is None else round(total - in_flight),
            None if in_flight is None else round(in_flight),
            None if total is None else round(total),
        )
        notes.append(f"{exc} (showing the last recorded depth)")
    try:
        dl = services.dead_letter.depth()
        dead_letter = Depth(plan.queue.dead_letter, dl.visible, dl.in_flight, dl.total)
    except ConstellationError as exc:
        total = answers["dead_letter"].get("")
        dead_letter = Depth(
            plan.queue.dead_letter, None, None, None if total is None else round(total)
        )
        notes.append(f"{exc} (showing the last recorded depth)")
    return queue, dead_letter


def _index_sizes(
    plan: Plan, services: Services, answers: dict[str, dict[str, float]], notes: list[str]
) -> dict[int, int]:
    sizes = index_sizes(plan, services)
    for label, value in answers["index"].items():
        if label.isdigit() and int(label) not in sizes:
            sizes[int(label)] = round(value)
            notes.append(
                f"index size of v{label} is the last recorded one (the index is unreadable)"
            )
    return dict(sorted(sizes.items()))


def alert_values(stats: ServiceStats) -> dict[str, float | None]:
    """The value of each alert-rule metric in ``stats``."""
    return {
        "queue_depth": stats.queue.total,
        "dead_letter_depth": stats.dead_letter.total,
        "error_rate": stats.window.error_rate,
        "processing_p95_ms": stats.window.batch_ms.p95,
        "query_p95_ms": stats.window.query_p95_ms,
        "provider_unavailable": 1.0 if stats.providers_unavailable else 0.0,
    }
