"""``constellation model upgrade|switch|rollback|finalize|status``: embedding-model versions."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from phases import model as models

app = typer.Typer(help="Move every note to another embedding-model version.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
To = Annotated[int, typer.Option("--to", help="The model version (a key of the plan's models).")]


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    to: To,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the steps; change nothing.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Write version V beside the current one and reprocess every note under V; reads stay."""
    m = context.get(ctx).migration(write=not dry_run)
    out = Output(json_out)
    with out.tracker() as tracker:
        report = models.upgrade(m, to, dry_run=dry_run, on_progress=tracker.advance)
    _show(out, report, json_out)


@app.command("switch")
def switch(ctx: typer.Context, to: To, json_out: Json = False) -> None:
    """Move reads to version V once it covers every note and agrees with the current one."""
    m = context.get(ctx).migration(write=False)
    out = Output(json_out)
    with out.tracker() as tracker:
        report = models.switch(m, to, on_progress=tracker.advance)
    _show(out, report, json_out)


@app.command("rollback")
def rollback(ctx: typer.Context, json_out: Json = False) -> None:
    """Move reads back to the previous version while its vectors still exist."""
    _show(Output(json_out), models.rollback(context.get(ctx).migration(write=False)), json_out)


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm deleting the old version's records.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Delete the previous version's records and write the new version only."""
    m = context.get(ctx).migration()
    out = Output(json_out)
    with out.tracker() as tracker:
        report = models.finalize(m, yes=yes, on_progress=tracker.advance)
    _show(out, report, json_out)


@app.command("status")
def status(ctx: typer.Context, json_out: Json = False) -> None:
    """Show the versions written and read, and the records per version."""
    _show(Output(json_out), models.status(context.get(ctx).migration(write=False)), json_out)


def _show(out: Output, report: models.ModelReport, json_out: bool) -> None:
    if json_out:
        out.json(report)
    else:
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
        if report.message:
            (out.info if report.ok else out.warn)(report.message)
    if not report.ok:
        raise typer.Exit(1)
