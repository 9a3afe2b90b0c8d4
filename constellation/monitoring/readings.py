"""Reading the metrics: from the local snapshot file, or from Prometheus's HTTP API.

(A *reader* of metrics, so that "source" means one thing in Constellation: the app's notes
database.)

Both evaluate the same :mod:`~constellation.monitoring.queries` at an instant (over a window)
or over a time range, and answer ``{label value: number}`` (``""`` for a query without ``by``);
a query with no data answers ``{}``.

The snapshot file holds every run made with the data folder; a :class:`Scope` narrows a
snapshot reader to the plan's current deployment (its queue and index as they exist now, see
:mod:`.deployment`), so a run against fresh servers does not add the last run's counts.

Snapshot arithmetic follows Prometheus's: an increase over ``(t - w, t]`` is, per instance, its
last value at or before ``t`` less its last value at or before ``t - w`` (zero before its first
snapshot, as counters start at zero), summed over instances. Quantiles interpolate linearly within
the histogram bucket that holds the rank, as ``histogram_quantile`` does.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.parse
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from constellation.deadline import fetch
from constellation.errors import MonitoringError, MonitoringUnreachable
from constellation.masking import location
from constellation.monitoring.deployment import Deployment, identify
from constellation.monitoring.metrics import Labels, Samples
from constellation.monitoring.queries import (
    Increase,
    Latest,
    Mean,
    Quantile,
    Query,
    Total,
    format_duration,
    promql,
)
from constellation.monitoring.store import MetricsStore, Timeline
from constellation.plan import Plan
from constellation.timefields import EPOCH_SECONDS

K = TypeVar("K")
#: label value → [(time, value)]
Series = dict[str, list[tuple[float, float]]]


@dataclass(frozen=True)
class Scope:
    """What a reader's figures cover: one deployment's instances, since they began."""

    #: the deployment counted: the live one, else the last one recorded (None: unscoped)
    deployment: Deployment | None
    #: the recorded deployment keys whose instances count (None: every instance)
    keys: tuple[str, ...] | None
    #: when the first counted instance started: totals are counts since then
    since: float | None = field(metadata=EPOCH_SECONDS)
    #: how the scope was chosen, when not from the live systems
    note: str = ""


#: no narrowing: every instance of the plan and environment
UNSCOPED = Scope(None, None, None)


class MetricReader(Protocol):
    """Answers monitoring queries."""

    description: str
    scope: Scope

    def instant(
        self, queries: Mapping[K, Query], at: float, window: float
    ) -> dict[K, dict[str, float]]:
        """Each query's values at ``at``, rates and quantiles over ``(at - window, at]``."""
        ...

    def range(
        self, queries: Mapping[K, Query], start: float, end: float, step: float
    ) -> dict[K, Series]:
        """Each query every ``step`` seconds from ``start`` to ``end`` (window: one step)."""
        ...


def open_reader(plan: Plan, services: Any = None) -> MetricReader:
    """Prometheus when the plan names one, else the snapshot file in the data folder, narrowed
    to the deployment that ``services`` reach now (every recorded run when None)."""
    url = plan.monitoring.prometheus_url
    if url:
        return PrometheusReader(url)
    store = MetricsStore(plan.metrics_path)
    scope = UNSCOPED if services is None else deployment_scope(store, plan, services)
    return SnapshotReader(store, plan.name, plan.environment, scope)


def deployment_scope(store: MetricsStore, plan: Plan, services: Any) -> Scope:
    """The recorded instances of the plan's current deployment.

    A recorded deployment is the current one when its queue (URL and creation time) and index
    are the same, and so is the index's id wherever both sides know it (an unreachable index
    still matches its queue). When the queue cannot be inspected, the last deployment that
    recorded anything stands in, and the scope says so."""
    recorded = store.deployments(plan.name, plan.environment)
    live = identify(plan, services)
    note = ""
    if live is not None:
        counted = [r for r in recorded if _same(r.deployment, live)]
        shown: Deployment | None = live
    elif recorded:
        counted = [recorded[-1]]
        shown = recorded[-1].deployment
        note = (
            f"the queue {plan.queue.name} cannot be inspected now; the figures are those of "
            f"the last deployment recorded (queue {shown.queue})"
        )
    else:
        counted, shown = [], None
    keys = tuple(r.deployment.key for r in counted)
    starts = [i.started for i in store.instances(plan.name, plan.environment, keys)]
    return Scope(shown, keys, min(starts) if starts else None, note)


def _same(recorded: Deployment, live: Deployment) -> bool:
    if (recorded.queue, recorded.queue_created, recorded.index) != (
        live.queue,
        live.queue_created,
        live.index,
    ):
        return False
    return recorded.index_id is None or live.index_id is None or recorded.index_id == live.index_id


# snapshots ------------------------------------------------------------------------------------
class SnapshotReader:
    """Answers from the snapshots that workers append to the metrics file (of the instances
    in ``scope``)."""

    def __init__(
        self, store: MetricsStore, plan: str, environment: str, scope: Scope = UNSCOPED
    ) -> None:
        self.store = store
        self.plan = plan
        self.environment = environment
        self.scope = scope
        where = f"snapshots in {store.path}"
        if scope.deployment is not None:
            where += f", deployment {scope.deployment.key}"
        self.description = where

    def _load(self, since: float, until: float) -> Timeline:
        return self.store.load(self.plan, self.environment, since, until, self.scope.keys)

    def instant(
        self, queries: Mapping[K, Query], at: float, window: float
    ) -> dict[K, dict[str, float]]:
        view = _View(self._load(at - window, at))
        return {key: view.evaluate(query, at, window) for key, query in queries.items()}

    def range(
        self, queries: Mapping[K, Query], start: float, end: float, step: float
    ) -> dict[K, Series]:
        view = _View(self._load(start - step, end))
        out: dict[K, Series] = {key: {} for key in queries}
        for t in _steps(start, end, step):
            for key, query in queries.items():
                for label, value in view.evaluate(query, t, step).items():
                    out[key].setdefault(label, []).append((t, value))
        return out


def _steps(start: float, end: float, step: float) -> list[float]:
    count = max(1, math.floor((end - start) / step + 1e-9) + 1)
    return [start + i * step for i in range(count)]


class _View:
    """Snapshot arithmetic over a loaded timeline."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.times = {i: [at for at, _ in rows] for i, rows in timeline.items()}

    def _at(self, instance: str, t: float) -> Samples | None:
        pos = bisect_right(self.times[instance], t)
        return self.timeline[instance][pos - 1][1] if pos else None

    def _started(self, t: float) -> bool:
        return any(times and times[0] <= t for times in self.times.values())

    def _total(self, metric: str, t: float) -> dict[Labels, float]:
        out: dict[Labels, float] = defaultdict(float)
        for instance in self.timeline:
            for labels, value in ((self._at(instance, t) or {}).get(metric) or {}).items():
                out[labels] += value
        return out

    def _increase(self, metric: str, t: float, window: float) -> dict[Labels, float]:
        now, before = self._total(metric, t), self._total(metric, t - window)
        return {labels: value - before.get(labels, 0.0) for labels, value in now.items()}

    def _latest(self, metric: str, t: float) -> dict[Labels, float]:
        newest: dict[Labels, tuple[float, float]] = {}
        for instance, rows in self.timeline.items():
            pos = bisect_right(self.times[instance], t)
            if not pos:
                continue
            at, samples = rows[pos - 1]
            for labels, value in (samples.get(metric) or {}).items():
                if labels not in newest or newest[labels][0] < at:
                    newest[labels] = (at, value)
        return {labels: value for labels, (_, value) in newest.items()}

    def evaluate(self, query: Query, t: float, window: float) -> dict[str, float]:
        if not self._started(t):
            return {}
        if isinstance(query, Total):
            return _group(self._total(query.metric, t), query.by, sum)
        if isinstance(query, Latest):
            return _group(self._latest(query.metric, t), query.by, max)
        if isinstance(query, Increase):
            values = _group(self._increase(query.metric, t, window), query.by, sum)
            if query.per_second:
                return {k: v / window for k, v in values.items()} if window > 0 else {}
            return values
        if isinstance(query, Quantile):
            buckets: dict[float, float] = defaultdict(float)
            for labels, value in self._increase(query.histogram + "_bucket", t, window).items():
                buckets[float(dict(labels)["le"])] += value
            quantile = histogram_quantile(query.q, buckets)
            return {} if quantile is None else {"": quantile * query.scale}
        if isinstance(query, Mean):
            total = sum(self._increase(query.histogram + "_sum", t, window).values())
            count = sum(self._increase(query.histogram + "_count", t, window).values())
            return {"": total / count} if count > 0 else {}
        numerator = sum(self.evaluate(query.numerator, t, window).values())
        denominator = sum(sum(self.evaluate(d, t, window).values()) for d in query.denominator)
        return {"": numerator / denominator} if denominator > 0 else {}


def _group(
    values: dict[Labels, float], by: str | None, combine: Callable[[list[float]], float]
) -> dict[str, float]:
    """Values by one label (``""`` for all), as ``sum by (label)`` / ``max by (label)``."""
    groups: dict[str, list[float]] = defaultdict(list)
    for labels, value in values.items():
        groups[dict(labels).get(by, "") if by else ""].append(value)
    return {key: combine(vs) for key, vs in groups.items()}


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's ``histogram_quantile`` over cumulative bucket counts keyed by ``le``."""
    items = sorted(buckets.items())
    if not items or not math.isinf(items[-1][0]) or items[-1][1] <= 0:
        return None
    rank = q * items[-1][1]
    lower, below = 0.0, 0.0
    for i, (le, count) in enumerate(items):
        count = max(count, below)  # cumulative counts never fall (Prometheus fixes them too)
        if count >= rank:
            if math.isinf(le):
                return lower if i else None
            if i == 0 and le <= 0:
                return le
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return None


# Prometheus -----------------------------------------------------------------------------------
class PrometheusReader:
    """Answers from a Prometheus server's HTTP API (``/api/v1/query`` and ``query_range``)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        #: the most one API call may take, in total (a server that drips its answer included)
        self.timeout = timeout
        self.description = f"Prometheus at {location(self.url)}"
        # Prometheus holds each live worker's own counters (a restarted or retired worker's
        # series go stale), so it never adds up past runs; it is not narrowed further.
        self.scope = Scope(None, None, None, "Prometheus: every worker it scrapes")

    def instant(
        self, queries: Mapping[K, Query], at: float, window: float
    ) -> dict[K, dict[str, float]]:
        range_ = format_duration(max(window, 1.0))
        out: dict[K, dict[str, float]] = {}
        for key, query in queries.items():
            params = {"query": promql(query, range_), "time": f"{at:.3f}"}
            out[key] = {
                _label(r, query): float(r["value"][1])
                for r in self._get("/api/v1/query", params)
                if _finite(r["value"][1])
            }
        return out

    def range(
        self, queries: Mapping[K, Query], start: float, end: float, step: float
    ) -> dict[K, Series]:
        range_ = format_duration(max(step, 1.0))
        out: dict[K, Series] = {}
        for key, query in queries.items():
            params = {
                "query": promql(query, range_),
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{max(step, 1.0):g}",
            }
            out[key] = {
                _label(r, query): [(float(t), float(v)) for t, v in r["values"] if _finite(v)]
                for r in self._get("/api/v1/query_range", params)
            }
        return out

    def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """The ``result`` list of one API call."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        hint = "check monitoring.prometheus_url in the plan and that Prometheus is up"
        try:
            reply = fetch(url, deadline=self.timeout)
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, no such host
            raise MonitoringUnreachable(
                f"cannot reach Prometheus at {location(self.url)}: {exc}", hint
            ) from exc
        except ValueError as exc:  # not an http(s) URL
            raise MonitoringError(f"cannot query Prometheus: {exc}", hint) from exc
        if reply.status >= 400:
            detail = reply.body.decode("utf-8", "replace")[:300]
            raise MonitoringError(f"Prometheus refused {params['query']!r}: {detail}", hint)
        try:
            body = json.loads(reply.body)
        except ValueError as exc:
            raise MonitoringError(
                f"Prometheus at {location(self.url)} answered no JSON: {exc}", hint
            ) from exc
        if body.get("status") != "success":
            raise MonitoringError(f"Prometheus answered {body.get('error', body)!r}", hint)
        result = (body.get("data") or {}).get("result")
        return result if isinstance(result, list) else []


def _label(result: dict[str, Any], query: Query) -> str:
    by = getattr(query, "by", None)
    return result.get("metric", {}).get(by, "") if by else ""


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
