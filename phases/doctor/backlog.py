"""Queue backlog or slow processing: processing rate against arrival rate, time to drain, and
what would drain it.

The processing rate is the jobs that ended over the stats window; the arrival rate is what
the queue gained on top of that: from the recorded depth at the window's start while a worker
records it, else from two live readings of the depth ``interval`` seconds apart. A worker is
consuming when one of the deployment's instances recorded a snapshot lately (a busy worker
records every interval; an idle one only when something changes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from constellation.errors import ConstellationError
from constellation.monitoring.queries import QUEUE_DEPTH, Latest
from constellation.monitoring.readings import MetricReader, SnapshotReader
from constellation.monitoring.stats import ServiceStats
from constellation.wiring.migration import Migration
from phases.doctor.report import Area
from phases.operate.tuned import Tuned, read_tuned

#: how soon a backlog should be gone when no alert rule says (seconds)
DRAIN_TARGET = 15 * 60


def tune_figures(m: Migration) -> Tuned | None:
    """The stored result of ``constellation tune`` (``<data_dir>/tune.json``), if any."""
    return read_tuned(m.plan.data_dir)


def diagnose_backlog(
    m: Migration,
    stats: ServiceStats,
    reader: MetricReader,
    *,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Area:
    """Is the queue draining, how fast, and what would drain it."""
    area = Area("backlog", "queue backlog or slow processing")
    window = stats.window.seconds
    depth = stats.queue.total
    if depth is None:
        area.find(
            f"the queue {stats.queue.name} cannot be read",
            "constellation verify",
            notes=stats.notes,
        )
        return area
    processing = stats.window.jobs / window if window > 0 else 0.0
    workers, last_seen = _workers(m, reader)
    if workers == 0 and not stats.queue.in_flight:
        processing = 0.0  # what ended earlier in the window is no rate for now: nobody works
    arrival, how = _arrival(m, stats, reader, processing, interval, sleep, bool(workers))
    enabled = m.state.read().consumer_enabled
    figures: dict[str, Any] = {
        "queue waiting": stats.queue.visible,
        "queue in flight": stats.queue.in_flight,
        "processing rate (jobs/s)": round(processing, 3),
        f"arrival rate (jobs/s, {how})": None if arrival is None else round(arrival, 3),
        "workers recording metrics": workers,
        "last worker activity": last_seen,
        "consumer enabled": enabled,
        "window (s)": window,
    }
    net = processing - (arrival or 0.0)
    drain_seconds = depth / net if depth and net > 0 else (0.0 if not depth else None)
    figures["time to drain (s)"] = None if drain_seconds is None else round(drain_seconds, 1)
    area.figures = figures
    if not depth:
        return area
    target = _drain_target(m)
    suggestion = _suggest(m, depth, arrival or 0.0, processing, workers, target)
    evidence = {
        "waiting": stats.queue.visible,
        "in flight": stats.queue.in_flight,
        "processing rate (jobs/s)": round(processing, 3),
        "arrival rate (jobs/s)": None if arrival is None else round(arrival, 3),
        **suggestion,
    }
    if not enabled:
        area.find(
            f"{depth:,} job(s) wait and the consumer switch is off: workers take no new batch",
            "constellation consumer enable",
            **evidence,
        )
    elif not stats.queue.in_flight and processing == 0 and not workers:
        area.find(
            f"{depth:,} job(s) wait and no worker is consuming "
            f"(last worker activity: {last_seen or 'never'})",
            "constellation worker run",
            **evidence,
        )
    elif drain_seconds is None:
        area.find(
            f"the queue grows: {arrival or 0:.2f} jobs/s arrive, {processing:.2f} jobs/s are "
            "processed",
            "constellation tune",
            **evidence,
        )
    elif drain_seconds > target:
        area.find(
            f"the backlog of {depth:,} job(s) takes {drain_seconds / 60:.0f} min to drain "
            f"at {net:.2f} jobs/s (target {target / 60:.0f} min)",
            "constellation tune",
            **evidence,
        )
    return area


def _arrival(
    m: Migration,
    stats: ServiceStats,
    reader: MetricReader,
    processing: float,
    interval: float,
    sleep: Callable[[float], None],
    recorded: bool,
) -> tuple[float | None, str]:
    """Jobs per second arriving: processed plus what the queue gained. The recorded depth is
    only recent while a worker records it; otherwise the queue is read twice, now."""
    window = stats.window.seconds
    then = reader.instant({"depth": Latest(QUEUE_DEPTH)}, stats.at - window, window)["depth"]
    if recorded and "" in then and stats.queue.total is not None and window > 0:
        grown = stats.queue.total - then[""]
        return max(0.0, processing + grown / window), f"over the last {window:g}s"
    if not stats.queue.total or interval <= 0:
        return None, "not measured"
    try:
        before = m.services.queue.depth().total
        started = time.monotonic()
        sleep(interval)
        after = m.services.queue.depth().total
        elapsed = max(time.monotonic() - started, interval)
    except ConstellationError:
        return None, "not measured"
    return max(0.0, processing + (after - before) / elapsed), f"over {elapsed:.1f}s now"


def _workers(m: Migration, reader: MetricReader) -> tuple[int | None, str | None]:
    """Workers of this deployment that recorded lately, and when any last did (None: the
    reader cannot tell, as Prometheus)."""
    if not isinstance(reader, SnapshotReader):
        return None, None
    recent = time.time() - max(60.0, 3 * m.plan.monitoring.snapshot_interval)
    instances = [
        i
        for i in reader.store.instances(m.plan.name, m.plan.environment, reader.scope.keys)
        if i.role == "worker"
    ]
    live = [i for i in instances if i.ended is None and i.last >= recent]
    last = max((i.last for i in instances), default=None)
    when = datetime.fromtimestamp(last).astimezone().isoformat(timespec="seconds") if last else None
    return len(live), when


def _drain_target(m: Migration) -> float:
    rules = [r for r in m.plan.monitoring.alerts if r.metric == "queue_depth"]
    return float(min((r.for_ for r in rules), default=DRAIN_TARGET)) or DRAIN_TARGET


def _suggest(
    m: Migration,
    depth: int,
    arrival: float,
    processing: float,
    workers: int | None,
    target: float,
) -> dict[str, Any]:
    """Workers, concurrency and batch size that would drain ``depth`` within ``target``."""
    consumer = m.plan.consumer
    tuned = tune_figures(m)
    needed = arrival + depth / target
    per_worker = tuned.jobs_per_second if tuned and tuned.jobs_per_second else None
    basis = "constellation tune"
    if per_worker is None and workers and processing:
        per_worker, basis = processing / workers, "measured per worker"
    out: dict[str, Any] = {
        "needed rate to drain in time (jobs/s)": round(needed, 3),
        "max_batch_size": tuned.max_batch_size if tuned else consumer.max_batch_size,
        "max_concurrency": tuned.max_concurrency if tuned else consumer.max_concurrency,
        "settings from": "constellation tune" if tuned else "the plan (not measured: run tune)",
    }
    if per_worker:
        out["workers needed"] = max(1, math.ceil(needed / per_worker))
        out["per-worker rate (jobs/s)"] = f"{per_worker:.2f} ({basis})"
    return out
