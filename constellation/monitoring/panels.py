"""The dashboard's panels, defined once for Grafana, the terminal and the HTML report.

Each panel draws one or more lines; each line is a :mod:`~constellation.monitoring.queries`
query with a Grafana legend (``{{label}}`` expands to the label's value). :func:`read_dashboard`
evaluates every line over a time range from the plan's metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from constellation.monitoring import queries as q
from constellation.monitoring.queries import Increase, Latest, Mean, Quantile, Query
from constellation.monitoring.readings import MetricReader, Series, open_reader
from constellation.monitoring.stats import ServiceStats, read_stats
from constellation.plan import Plan
from constellation.services import Services


@dataclass(frozen=True)
class Line:
    legend: str
    query: Query


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    #: a Grafana unit id (``short``, ``ms``, ``cps``)
    unit: str
    lines: tuple[Line, ...]
    #: the alert-rule metric this panel shows, drawn as a threshold
    metric: str | None = None
    #: what the panel says when none of its lines has data
    empty: str = "no data recorded"
    #: what to read from it, beyond its title (the HTML report's caption)
    about: str = ""


def _percentile_lines(histogram: str) -> tuple[Line, ...]:
    return tuple(Line(f"p{p}", Quantile(p / 100, histogram, 1000.0)) for p in (50, 95, 99))


PANELS: tuple[Panel, ...] = (
    Panel(
        "queue",
        "Queue depth",
        "short",
        (
            Line("embed queue", Latest(q.QUEUE_DEPTH)),
            Line("in flight", Latest(q.QUEUE_IN_FLIGHT)),
            Line("dead letter", Latest(q.DEAD_LETTER_DEPTH)),
        ),
        "queue_depth",
        about="Jobs waiting or being worked on. A line that keeps rising while workers run "
        "means they cannot keep up: add workers or raise max_concurrency.",
    ),
    Panel(
        "processing",
        "Processing time, full batch to stored (ms)",
        "ms",
        _percentile_lines(q.BATCH_DURATION),
        "processing_p95_ms",
        about="The worker's own work on a batch: the model and the index write (with the wait "
        "for the model's streams when many batches are in flight), never the wait to fill it.",
    ),
    Panel(
        "latency",
        "Time to searchable, enqueue to stored (ms)",
        "ms",
        _percentile_lines(q.JOB_LATENCY),
        about="How long a note takes to become searchable: its wait in the queue and for its "
        "batch to fill (at most max_batch_timeout when the queue is quiet), then processing.",
    ),
    Panel(
        "throughput",
        "Jobs per second",
        "cps",
        (
            Line("stored", Increase(q.PROCESSED, per_second=True)),
            Line("skipped", Increase(q.SKIPPED, per_second=True)),
        ),
        about="Jobs ended per second: stored (embedded and written) and skipped (unchanged, "
        "no model). Under a backlog it is the service's capacity.",
    ),
    Panel(
        "stage_time",
        "Model and index time per batch (ms)",
        "ms",
        (
            Line("model p50", Quantile(0.5, q.MODEL_TIME, 1000.0)),
            Line("model p95", Quantile(0.95, q.MODEL_TIME, 1000.0)),
            Line("index p50", Quantile(0.5, q.UPSERT_TIME, 1000.0)),
            Line("index p95", Quantile(0.95, q.UPSERT_TIME, 1000.0)),
        ),
        about="Where a batch's processing goes: the model's share against the index write's. "
        "The model should dominate; a growing index share points at the index.",
    ),
    Panel(
        "errors",
        "Failed jobs by error type (per second)",
        "cps",
        (Line("{{error_type}}", Increase(q.FAILED, "error_type", per_second=True)),),
        empty="no failures",
        about="Failed attempts by cause; a failed job is retried, and lands in the dead-letter "
        "queue after max_retries.",
    ),
    Panel(
        "embedding_batch",
        "Embedding batch size",
        "short",
        (Line("mean", Mean(q.EMBED_BATCH)), Line("p95", Quantile(0.95, q.EMBED_BATCH))),
        about="Texts per model call. Far below max_batch_size under load means batches close "
        "on max_batch_timeout before they fill.",
    ),
    Panel(
        "upsert_batch",
        "Upsert batch size",
        "short",
        (Line("mean", Mean(q.UPSERT_BATCH)), Line("p95", Quantile(0.95, q.UPSERT_BATCH))),
        about="Records per index write; unchanged notes are skipped and never written.",
    ),
    Panel(
        "query",
        "Query response time (ms)",
        "ms",
        _percentile_lines(q.QUERY_LATENCY),
        "query_p95_ms",
        about="One search: embedding the query and the filtered index call (a model's load is "
        "not counted).",
    ),
    Panel(
        "index_size",
        "Index size by model version",
        "short",
        (Line("v{{version}}", Latest(q.INDEX_SIZE, "version")),),
        about="Records per model version; during a model upgrade the new version grows to the "
        "old one's size.",
    ),
)


@dataclass(frozen=True)
class PanelData:
    panel: Panel
    #: legend → [(epoch seconds, value)]; lines that stayed at zero throughout are left out
    series: Series
    #: the alert threshold for this panel's metric, if the plan has one
    threshold: float | None = None


@dataclass(frozen=True)
class DashboardData:
    plan: str
    environment: str
    source: str
    start: float
    end: float
    step: float
    stats: ServiceStats
    panels: list[PanelData]
    #: how often workers write snapshots (``monitoring.snapshot_interval``): the finest grain
    snapshot_interval: float = 10.0
    #: the first and last time something happened (a job, a batch, a search), if ever
    active: tuple[float, float] | None = None

    def span(self) -> tuple[float, float] | None:
        """The first and last time something happened in the range, or None: gauges that hold
        their last reading do not count (they would stretch the span to now)."""
        return self.active

    def cadence(self) -> str:
        """How finely the figures are drawn, said the same way by every view: one point a step,
        never finer than the snapshots they come from (``monitoring.snapshot_interval``)."""
        return f"a point every {max(self.step, self.snapshot_interval):g}s"


def legend(line: Line, label: str) -> str:
    by = getattr(line.query, "by", None)
    return line.legend.replace("{{" + by + "}}", label or "-") if by else line.legend


def read_dashboard(
    plan: Plan,
    services: Services,
    *,
    range_seconds: float = 3600.0,
    points: int = 60,
    now: float | None = None,
    reader: MetricReader | None = None,
) -> DashboardData:
    """The current figures and every panel's series over the last ``range_seconds``."""
    end = time.time() if now is None else now
    step = max(range_seconds / max(points, 1), 1.0)
    start = end - range_seconds
    reader = reader or open_reader(plan, services)
    stats = read_stats(plan, services, now=end, reader=reader)
    queries = {(p.key, i): line.query for p in PANELS for i, line in enumerate(p.lines)}
    answers = reader.range(queries, start, end, step)
    thresholds: dict[str, float] = {r.metric: r.threshold for r in plan.monitoring.alerts}
    panels = []
    happened: list[float] = []
    for panel in PANELS:
        series: Series = {}
        for i, line in enumerate(panel.lines):
            for label, points_ in sorted(answers[(panel.key, i)].items()):
                if any(v for _, v in points_) or not isinstance(line.query, Increase):
                    series[legend(line, label)] = points_
                if not isinstance(line.query, Latest):  # a change within a step: activity
                    happened += [t for t, v in points_ if v]
        panels.append(PanelData(panel, series, thresholds.get(panel.metric or "")))
    return DashboardData(
        plan.name,
        plan.environment,
        reader.description,
        start,
        end,
        step,
        stats,
        panels,
        plan.monitoring.snapshot_interval,
        (min(happened), max(happened)) if happened else None,
    )
