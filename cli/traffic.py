"""``constellation traffic show`` and ``constellation traffic set``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json, Reason
from constellation.errors import ConfirmationNeeded
from phases.migrate import traffic as traffic_verbs

app = typer.Typer(help="Read-traffic share served by the new system.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context, json_out: Json = False) -> None:
    """Show the read-traffic share, the step reached and the gate for the next step."""
    app_ctx = context.get(ctx)
    app_ctx.output.show(traffic_verbs.show(app_ctx.migration(write=False)), show_traffic)


@app.command("set")
def set_(
    ctx: typer.Context,
    share: Annotated[
        float, typer.Argument(min=0.0, max=1.0, help="Share of users on the new system, 0 to 1.")
    ],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm a jump of more than one step.")
    ] = False,
    reason: Reason = "",
    json_out: Json = False,
) -> None:
    """Set the read-traffic share by hand (journaled); a jump of more than one step asks first."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    try:
        report = traffic_verbs.set_traffic(m, share, yes=yes, reason=reason)
    except ConfirmationNeeded as exc:
        # A machine reading JSON cannot answer a prompt: the refusal stands.
        if app_ctx.output.json_mode or not typer.confirm(
            f"{exc.message}. Continue?", default=False, err=True
        ):
            raise
        report = traffic_verbs.set_traffic(m, share, yes=True, reason=reason)
    app_ctx.output.show(report, show_traffic)


def show_traffic(out: Output, report: traffic_verbs.TrafficReport) -> None:
    steps = " → ".join(
        f"[bold]{s:.0%}[/]" if i == report.step else f"{s:.0%}" for i, s in enumerate(report.steps)
    )
    out.result(f"read traffic {report.read_traffic:.0%} (plan steps: {steps})")
    render.gate(out, report.gate)
