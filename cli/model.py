"""``constellation model upgrade|switch|rollback|finalize|status``: embedding-model versions."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import DryRun, Json
from phases.migrate import model as models

app = typer.Typer(help="Move every note to another embedding-model version.", no_args_is_help=True)
To = Annotated[int, typer.Option("--to", help="The model version (a key of the plan's models).")]


@app.command("upgrade")
def upgrade(ctx: typer.Context, to: To, dry_run: DryRun = False, json_out: Json = False) -> None:
    """Write version V beside the current one and reprocess every note under V; reads stay."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=not dry_run)
    with app_ctx.output.tracker() as tracker:
        report = models.upgrade(m, to, dry_run=dry_run, on_progress=tracker.advance)
    _finish(app_ctx.output, report)


@app.command("switch")
def switch(ctx: typer.Context, to: To, json_out: Json = False) -> None:
    """Move reads to version V once it covers every note and agrees with the current one."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    with app_ctx.output.tracker() as tracker:
        report = models.switch(m, to, on_progress=tracker.advance)
    _finish(app_ctx.output, report)


@app.command("rollback")
def rollback(ctx: typer.Context, json_out: Json = False) -> None:
    """Move reads back to the previous version while its vectors still exist."""
    app_ctx = context.get(ctx)
    _finish(app_ctx.output, models.rollback(app_ctx.migration(write=False)))


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm deleting the old version's records.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Delete the previous version's records and write the new version only."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration()
    with app_ctx.output.tracker() as tracker:
        report = models.finalize(m, yes=yes, on_progress=tracker.advance)
    _finish(app_ctx.output, report)


@app.command("status")
def status(ctx: typer.Context, json_out: Json = False) -> None:
    """Show the versions written and read, and the records per version."""
    app_ctx = context.get(ctx)
    _finish(app_ctx.output, models.status(app_ctx.migration(write=False)))


def _finish(out: Output, report: models.ModelReport) -> None:
    """Show the report; exit non-zero when its gate failed."""
    out.show(report, show_model)
    outcome = "pass" if report.ok else report.outcome if report.outcome != "pass" else "fail"
    render.finish(out, outcome, report.message)


def show_model(out: Output, report: models.ModelReport) -> None:
    render.steps(
        out, report.steps, f"model {report.action}" + (" (dry run)" if report.dry_run else "")
    )
    render.consistency(out, report.consistency)
    render.gate(out, report.gate)
    if report.state is not None:
        s = report.state
        out.result(
            f"versions written: {', '.join(map(str, s.write_versions))}; "
            f"read: {', '.join(map(str, s.read_versions))}"
        )
    if report.records_by_version:
        out.table(
            ["version", "records"],
            sorted(report.records_by_version.items()),
            title="records by version",
        )
