"""``constellation tune``: batch size x concurrency trials of the worker, and a recommendation."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from phases.operate.tune import DEFAULT_BATCH_SIZES, DEFAULT_CONCURRENCIES, TuneReport
from phases.operate.tune import tune as run_tune


def _numbers(value: str, name: str) -> list[int]:
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise typer.BadParameter(f"{name} takes positive whole numbers, comma-separated: {value!r}")
    return numbers


def tune(
    ctx: typer.Context,
    json_out: Json = False,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Notes embedded per trial (from the source).")
    ] = 200,
    batch_sizes: Annotated[
        str, typer.Option("--batch-sizes", help="max_batch_size values to try, comma-separated.")
    ] = ",".join(map(str, DEFAULT_BATCH_SIZES)),
    concurrency: Annotated[
        str, typer.Option("--concurrency", help="max_concurrency values to try, comma-separated.")
    ] = ",".join(map(str, DEFAULT_CONCURRENCIES)),
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the plan's).")
    ] = None,
) -> None:
    """Measure the worker at several batch sizes and concurrencies; recommend the settings."""
    sizes = _numbers(batch_sizes, "--batch-sizes")
    concurrencies = _numbers(concurrency, "--concurrency")
    app_ctx = context.get(ctx)
    out = app_ctx.output
    m = app_ctx.migration(write=False)
    with out.status("tuning") as update:
        report = run_tune(
            m,
            sample=sample,
            batch_sizes=sizes,
            concurrencies=concurrencies,
            version=version,
            progress=update,
        )
    out.show(report, show_tune)


def show_tune(out: Output, report: TuneReport) -> None:
    """The trials as a table, the recommendation, and the plan snippet."""
    best = report.recommended
    rows = [
        (
            t.max_batch_size,
            t.max_concurrency,
            t.jobs,
            t.seconds,
            t.jobs_per_second,
            t.batch_p95_ms,
            "recommended" if t is best else "",
        )
        for t in report.trials
    ]
    out.table(
        ["max_batch_size", "max_concurrency", "jobs", "seconds", "jobs/s", "batch p95 ms", ""],
        rows,
        title=f"worker trials: {report.model} (v{report.version}), {report.sample} notes from "
        f"{report.sample_from}",
    )
    for note in report.notes:
        out.warn(note)
    out.result(
        f"recommended: max_batch_size {best.max_batch_size}, max_concurrency "
        f"{best.max_concurrency} ({best.jobs_per_second:,.1f} jobs/s per worker); saved to "
        f"{report.path} for `constellation doctor`. In the plan:"
    )
    out.result(report.snippet.rstrip())
