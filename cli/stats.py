"""``constellation stats``: the service's figures (its ``/stats``)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context
from cli.output import Output, timestamp
from cli.params import Json, seconds
from constellation.monitoring.stats import Percentiles, ServiceStats, read_stats


def stats(
    ctx: typer.Context,
    json_out: Json = False,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Rates and percentiles over this many seconds (or 5m, 1h); default: the plan's.",
        ),
    ] = None,
) -> None:
    """Queue and dead-letter depth, job counts, error rate, latency percentiles, index size."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    result = read_stats(plan, app_ctx.services(write=False), seconds(window))
    out = app_ctx.output
    # Where the figures come from, and why some are missing, goes to stderr in either mode.
    out.info(f"metrics from {result.source}")
    for note in result.notes:
        out.warn(note)
    out.show(result, partial(show_stats, title=f"{plan.name} ({plan.environment})"))


def scope_rows(s: ServiceStats) -> list[tuple[str, object]]:
    """What the figures count: the deployment, since when, and the window."""
    rows: list[tuple[str, object]] = []
    scope = s.scope
    if scope is not None and scope.deployment is not None:
        d = scope.deployment
        rows += [
            ("deployment", d.key),
            ("queue", d.queue),
            ("queue created", timestamp(d.queue_created)),
            ("index", d.index + (f" (id {d.index_id[:8]})" if d.index_id else "")),
        ]
    if scope is not None and scope.keys is not None:
        rows.append(("totals since", timestamp(scope.since) if scope.since else "nothing recorded"))
    else:
        rows.append(("totals", "every worker the source knows of (not one deployment)"))
    window = s.window.seconds
    rows.append(("window", f"last {window:g}s, since {timestamp(s.at - window)}"))
    return rows


def show_stats(out: Output, s: ServiceStats, *, title: str) -> None:
    """The figures as four tables: what they count, queues and index, jobs, and the window."""
    out.table(["scope", ""], scope_rows(s), title=f"{title}: what the figures count")
    rows: list[tuple[str, object]] = [
        (f"queue {s.queue.name}: waiting", s.queue.visible),
        (f"queue {s.queue.name}: in flight", s.queue.in_flight),
        (f"dead-letter queue {s.dead_letter.name}", s.dead_letter.total),
        *((f"index records v{v}", n) for v, n in s.index_size.items()),
        *(
            (f"embedding provider v{v}", "unavailable: workers have stopped receiving")
            for v in s.providers_unavailable
        ),
    ]
    out.table(["", "now"], rows, title=f"{title}: queues and index")
    j = s.jobs
    job_rows: list[tuple[str, object]] = [
        ("processed", j.processed),
        ("skipped", j.skipped),
        *((f"  skipped: {k}", v) for k, v in j.skipped_by_reason.items()),
        ("failed attempts", j.failed),
        *((f"  failed: {k}", v) for k, v in j.failed_by_reason.items()),
        ("dead-lettered", j.dead_lettered),
        ("given back (provider unavailable)", j.deferred),
        ("truncated", j.truncated),
    ]
    since = s.scope.since if s.scope is not None else None
    out.table(["jobs", "total"], job_rows, title=f"since {timestamp(since)}" if since else None)
    w = s.window
    window_rows: list[tuple[str, object, object, object]] = [
        ("jobs ended", w.jobs, None, None),
        ("failed", w.failed, None, None),
        ("error rate", w.error_rate, None, None),
        ("batch processing ms (full → stored)", *_percentiles(w.batch_ms)),
        ("searchable after ms (enqueue → stored)", *_percentiles(w.processing_ms)),
        ("query ms", None, w.query_p95_ms, None),
        ("mean embedding batch size", w.mean_embedding_batch_size, None, None),
        ("mean upsert batch size", w.mean_upsert_batch_size, None, None),
    ]
    out.table(["", "value / p50", "p95", "p99"], window_rows, title=f"last {w.seconds:g}s")


def _percentiles(p: Percentiles) -> tuple[float | None, float | None, float | None]:
    return (p.p50, p.p95, p.p99)
