"""``constellation check consistency|recall|quality|capacity``.

Each ends with its outcome's exit code: 0 pass, 1 fail, 3 inconclusive (2 for a bad option or
file, 4 for a system that cannot be reached); a check the plan marks ``dry_run`` only keeps a
gate from deciding on it: asked for by name, it answers. ``recall``, ``quality`` and ``capacity`` record
their measurement in the migration state, so ``migrate status`` shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json
from phases.checks.capacity import CapacityReport
from phases.checks.consistency import ConsistencyReport, consistency_between
from phases.checks.measured import measure_capacity, measure_quality, measure_recall

app = typer.Typer(
    help="Checks of the new system: agreement with the old, recall, quality, capacity.",
    no_args_is_help=True,
)


def _versions(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        first, second = (int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter("--versions takes two versions, e.g. 1,2") from None
    return first, second


@app.command("consistency")
def consistency(
    ctx: typer.Context,
    sample_size: Annotated[
        int | None,
        typer.Option("--sample-size", min=1, help="Notes to sample (default: the plan's)."),
    ] = None,
    min_overlap: Annotated[
        float | None,
        typer.Option(
            "--min-overlap", min=0.0, max=1.0, help="Pass threshold (default: the plan's)."
        ),
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1)] = None,
    versions: Annotated[
        str | None,
        typer.Option(
            "--versions", help="Compare two model versions of the new index instead, e.g. 1,2."
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Search old and new for sampled notes' own text; report the top-K overlap (exit 1 below it)."""
    pair = _versions(versions)
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    out = app_ctx.output
    with out.tracker() as tracker:
        report = consistency_between(
            m,
            sample_size=sample_size,
            min_overlap=min_overlap,
            top_k=top_k,
            versions=pair,
            on_progress=tracker.advance,
        )
    out.show(report, show_consistency)
    render.finish(out, report.outcome)


def show_consistency(out: Output, report: ConsistencyReport) -> None:
    render.consistency(out, report, low_rows=20)


@app.command("recall")
def recall(
    ctx: typer.Context,
    users: Annotated[
        int | None, typer.Option("--users", min=1, help="Users to sample (default: the plan's).")
    ] = None,
    queries: Annotated[
        int | None,
        typer.Option("--queries", min=1, help="Queries per user (default: the plan's)."),
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=100, help="Recall at k.")] = None,
    min_recall: Annotated[
        float | None,
        typer.Option("--min-recall", min=0.0, max=1.0, help="Pass bound (default: the plan's)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the one read).")
    ] = None,
    json_out: Json = False,
) -> None:
    """Recall@k of the new index against exact search over sampled users' notes, embedded again
    from the notes source (exit 1 below the bound)."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    out = app_ctx.output
    with out.tracker() as tracker:
        report = measure_recall(
            m,
            users=users,
            queries=queries,
            k=k,
            min_recall=min_recall,
            version=version,
            on_progress=tracker.advance,
        )
    out.show(report, render.recall)
    render.finish(out, report.outcome)


@app.command("quality")
def quality(
    ctx: typer.Context,
    golden: Annotated[
        Path | None,
        typer.Option(
            "--golden",
            help='Judged queries, JSON Lines of {"userId", "query", "relevant": [noteIds]} '
            "(default: the plan's migration.quality.golden).",
        ),
    ] = None,
    versions: Annotated[
        str | None,
        typer.Option(
            "--versions", help="Judge two model versions of the new index instead, e.g. 1,2."
        ),
    ] = None,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance", min=0.0, max=1.0, help="New may trail old by this much (plan's)."
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Recall@k, MRR and nDCG@10 of the old and the new system (or two model versions) on a
    judged query set, side by side (exit 1 when new < old - tolerance)."""
    pair = _versions(versions)
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    out = app_ctx.output
    with out.tracker() as tracker:
        report = measure_quality(
            m, golden, versions=pair, tolerance=tolerance, on_progress=tracker.advance
        )
    out.show(report, render.quality)
    render.finish(out, report.outcome)


@app.command("capacity")
def capacity(
    ctx: typer.Context,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the plan's).")
    ] = None,
    json_out: Json = False,
) -> None:
    """Notes to backfill, this machine's embedding rate with the real model, the backfill
    time, and the index's memory and disk beside what is free (exit 1 when it will not fit)."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    out = app_ctx.output
    with out.status("measuring the embedding rate on a sample of notes"):
        report: CapacityReport = measure_capacity(m, version=version)
    out.show(report, render.capacity)
    render.finish(out, report.outcome)
