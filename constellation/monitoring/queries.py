"""The questions monitoring asks of the service's metrics, and their PromQL.

Every figure of ``stats``, every alert condition and every dashboard series is one of the small
query objects below. :class:`~constellation.monitoring.readings.SnapshotReader` evaluates them over
the local snapshot file; :func:`promql` turns them into the PromQL that Prometheus answers and
that the exported rule file and Grafana dashboard contain, so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation.errors import MonitoringError

# Metric names as exposed on /metrics (counters with their ``_total`` suffix).
PROCESSED = "constellation_jobs_processed_total"
SKIPPED = "constellation_jobs_skipped_total"
FAILED = "constellation_jobs_failed_total"
DEAD_LETTERED = "constellation_jobs_dead_lettered_total"
TRUNCATED = "constellation_jobs_truncated_total"
DEFERRED = "constellation_jobs_deferred_total"
PROVIDER_UNAVAILABLE = "constellation_provider_unavailable"
JOB_LATENCY = "constellation_job_latency_seconds"
BATCH_DURATION = "constellation_batch_duration_seconds"
MODEL_TIME = "constellation_batch_model_seconds"
UPSERT_TIME = "constellation_batch_upsert_seconds"
EMBED_BATCH = "constellation_embedding_batch_size"
UPSERT_BATCH = "constellation_upsert_batch_size"
QUERY_LATENCY = "constellation_query_latency_seconds"
QUEUE_DEPTH = "constellation_queue_depth"
QUEUE_IN_FLIGHT = "constellation_queue_in_flight"
DEAD_LETTER_DEPTH = "constellation_dead_letter_depth"
INDEX_SIZE = "constellation_index_size"
MODEL_LOAD = "constellation_model_load_seconds"


@dataclass(frozen=True)
class Total:
    """A counter's current value, summed over every worker."""

    metric: str
    by: str | None = None


@dataclass(frozen=True)
class Latest:
    """A gauge's most recent reading (in PromQL: the largest over the workers reporting it)."""

    metric: str
    by: str | None = None


@dataclass(frozen=True)
class Increase:
    """How much a counter grew over the window (``per_second``: divided by the window)."""

    metric: str
    by: str | None = None
    per_second: bool = False


@dataclass(frozen=True)
class Quantile:
    """The ``q`` quantile of a histogram's observations in the window, times ``scale``."""

    q: float
    histogram: str
    scale: float = 1.0


@dataclass(frozen=True)
class Mean:
    """The mean of a histogram's observations in the window."""

    histogram: str


@dataclass(frozen=True)
class Ratio:
    """One increase divided by the sum of others (no value when they sum to zero)."""

    numerator: Increase
    denominator: tuple[Increase, ...]


Query = Total | Latest | Increase | Quantile | Mean | Ratio

#: failed attempts out of all attempts that ended (stored, skipped or failed)
ERROR_RATE = Ratio(Increase(FAILED), (Increase(PROCESSED), Increase(SKIPPED), Increase(FAILED)))
#: a batch's processing, from full to stored: never the wait to fill it, nor a model's load
PROCESSING_P95_MS = Quantile(0.95, BATCH_DURATION, 1000.0)
QUERY_P95_MS = Quantile(0.95, QUERY_LATENCY, 1000.0)

#: what each alert-rule ``metric`` of the plan means
ALERT_QUERIES: dict[str, Query] = {
    "queue_depth": Latest(QUEUE_DEPTH),
    "dead_letter_depth": Latest(DEAD_LETTER_DEPTH),
    "error_rate": ERROR_RATE,
    "processing_p95_ms": PROCESSING_P95_MS,
    "query_p95_ms": QUERY_P95_MS,
    "provider_unavailable": Latest(PROVIDER_UNAVAILABLE),
}


def promql(query: Query, window: str) -> str:
    """The PromQL for ``query``; ``window`` is a range such as ``5m`` or ``$__rate_interval``."""
    if isinstance(query, Total):
        return _aggregate("sum", query.by, query.metric)
    if isinstance(query, Latest):
        return _aggregate("max", query.by, query.metric)
    if isinstance(query, Increase):
        fn = "rate" if query.per_second else "increase"
        return _aggregate("sum", query.by, f"{fn}({query.metric}[{window}])")
    if isinstance(query, Quantile):
        inner = f"sum by (le) (rate({query.histogram}_bucket[{window}]))"
        expr = f"histogram_quantile({query.q:g}, {inner})"
        return f"{expr} * {query.scale:g}" if query.scale != 1 else expr
    if isinstance(query, Mean):
        h = query.histogram
        return f"sum(rate({h}_sum[{window}])) / sum(rate({h}_count[{window}]))"
    numerator = promql(query.numerator, window)
    denominator = " + ".join(promql(d, window) for d in query.denominator)
    return f"{numerator} / ({denominator})"


def _aggregate(op: str, by: str | None, expr: str) -> str:
    return f"{op} by ({by}) ({expr})" if by else f"{op}({expr})"


def parse_duration(text: str) -> float:
    """Seconds from ``300``, ``30s``, ``15m``, ``2h`` or ``7d`` (as plans write durations)."""
    from constellation.plan import parse_duration as plan_duration

    try:
        return float(plan_duration(text))
    except ValueError as exc:
        raise MonitoringError(
            f"not a duration: {text!r}", "give seconds, or a number with s, m, h or d (e.g. 15m)"
        ) from exc


def format_duration(seconds: float) -> str:
    """A Prometheus duration: ``15m``, ``2h``, ``90s``, ``0s`` (whole seconds, largest unit)."""
    whole = round(seconds)
    if whole <= 0:
        return "0s"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
