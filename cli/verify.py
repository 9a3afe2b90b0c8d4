"""``constellation verify``: the deployment verification checklist."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output
from constellation.migration.state import open_state
from phases.verify import verify as verify_deployment


def verify(
    ctx: typer.Context,
    inline: Annotated[
        bool, typer.Option("--inline", help="Process the test job with an in-process worker.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the worker.")
    ] = 120.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checklist as JSON.")] = False,
) -> None:
    """Check plan, queues, index and model, then a round trip through the service."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = Output(json_out)
    state = open_state(plan)
    with out.status("verifying") as update:
        report = verify_deployment(
            plan,
            app_ctx.services(write=inline),
            state,
            inline=inline,
            timeout=timeout,
            on_check=lambda c: update(f"{c.name}: {'pass' if c.passed else 'fail'}"),
        )
    state.close()
    if json_out:
        out.json({"passed": report.passed, "checks": report.checks})
    else:
        out.table(
            ["check", "result", "detail"],
            [(c.name, "pass" if c.passed else "fail", c.detail) for c in report.checks],
            title=f"verify {plan.name} ({plan.environment})",
        )
    if not report.passed:
        raise typer.Exit(1)
