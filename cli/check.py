"""``constellation check consistency``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json
from phases.consistency import ConsistencyReport, consistency_between

app = typer.Typer(help="Checks between the old and the new system.", no_args_is_help=True)


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
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    pair = None
    if versions is not None:
        try:
            first, second = (int(v) for v in versions.split(","))
        except ValueError:
            raise typer.BadParameter("--versions takes two versions, e.g. 1,2") from None
        pair = (first, second)
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
    if not report.passed:
        raise typer.Exit(1)


def show_consistency(out: Output, report: ConsistencyReport) -> None:
    render.consistency(out, report, low_rows=20)
