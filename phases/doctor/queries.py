"""Slow queries: the recorded query p95, a live sample split into the model's share and the
index's, the index's size and layout (read from its manifest), and where a search for a real
user runs with which filter (asked of the index itself)."""

from __future__ import annotations

import time
from typing import Any

from constellation.errors import ConstellationError
from constellation.index.layout import Layout as IndexLayout
from constellation.index.port import VectorIndex
from constellation.ledger.comparisons import percentile
from constellation.monitoring.stats import ServiceStats
from constellation.query import embed_query
from constellation.wiring.migration import Migration
from phases.doctor.report import Area


def diagnose_queries(m: Migration, stats: ServiceStats, *, samples: int) -> Area:
    """Query latency against the plan's bound, and where the time goes."""
    area = Area("queries", "slow queries")
    plan = m.plan
    version = m.state.read().read_versions[0]
    bound = _bound(m)
    name = plan.index_name_for(version)
    try:
        index = m.services.index(version)
        info = m.services.store.inspect(name)
        size = index.count(version=version)
    except ConstellationError as exc:
        area.find(f"the index {name} cannot be read: {exc}", "constellation verify")
        return area
    live = _measure(m, version, samples)
    area.figures = {
        "recorded query p95 (ms)": stats.window.query_p95_ms,
        "bound (ms)": bound,
        **live,
        "index": name,
        "records of this version": size,
        "records in the index": info.count if info else None,
        "layout": (
            f"{IndexLayout.from_metadata(info.manifest).describe()}, {info.metric}, "
            f"{info.dimension} dims, at {info.location}"
            if info
            else "unknown"
        ),
        "a search for one user": _search_filter(m, index, version),
    }
    if not live.get("queries measured"):
        area.notes.append("no notes to search with: live latency not measured")
    p95s = [p for p in (stats.window.query_p95_ms, live.get("live p95 (ms)")) if p is not None]
    if p95s and max(p95s) > bound:
        model_ms, index_ms = live.get("model p95 (ms)"), live.get("index p95 (ms)")
        index_heavy = index_ms is not None and model_ms is not None and index_ms >= model_ms
        area.find(
            f"query p95 {max(p95s):.0f} ms is over the bound of {bound:.0f} ms",
            "constellation describe" if index_heavy else "constellation model upgrade --to 2",
            **{k: v for k, v in area.figures.items() if k != "bound (ms)"},
            bound_ms=bound,
            where_the_time_goes=(
                "the index (its filter and size)" if index_heavy else "the model (query embedding)"
            ),
        )
    return area


def _search_filter(m: Migration, index: VectorIndex, version: int) -> str:
    """Where a search for a real user runs and with which filter (the first user with notes)."""
    users = m.source.users()
    return index.search_filter(users[0], version) if users else "no users yet"


def _bound(m: Migration) -> float:
    """The tightest of the plan's query-latency bounds (phase 2's gate, a query alert rule)."""
    bounds = [m.plan.migration.traffic.max_p95_latency_ms]
    bounds += [r.threshold for r in m.plan.monitoring.alerts if r.metric == "query_p95_ms"]
    return float(min(bounds))


def _measure(m: Migration, version: int, samples: int) -> dict[str, Any]:
    """Search with sampled notes' own text as the router does, timing model and index apart."""
    if samples <= 0:
        return {}
    notes = [n for n in m.source.sample(samples, seed=7) if n.content.strip()]
    embedder = m.services.embedder(version)
    index = m.services.index(version)
    model_ms: list[float] = []
    index_ms: list[float] = []
    for note in notes:
        started = time.perf_counter()
        vector = embed_query(note.content, embedder, remember=False)  # the model, timed
        embedded = time.perf_counter()
        if vector is None:
            continue
        index.query(vector, user_id=note.user_id, top_k=10, version=version)
        done = time.perf_counter()
        model_ms.append((embedded - started) * 1000)
        index_ms.append((done - embedded) * 1000)
    total = [a + b for a, b in zip(model_ms, index_ms, strict=True)]
    return {
        "queries measured": len(total),
        "live p95 (ms)": _round(percentile(total, 95)),
        "model p95 (ms)": _round(percentile(model_ms, 95)),
        "index p95 (ms)": _round(percentile(index_ms, 95)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
