"""``constellation plan ...``: check plans."""

from __future__ import annotations

from typing import Annotated

import typer
import yaml

from cli import context
from cli.output import Output

app = typer.Typer(help="Check plans.", no_args_is_help=True)


@app.command("validate")
def validate(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the resolved plan as JSON.")
    ] = False,
) -> None:
    """Load and check a plan; print it resolved (secrets masked) or every error."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = Output(json_out)
    if json_out:
        out.json(plan.redacted())
        return
    out.info(f"plan {app_ctx.plan_path} is valid (environment {plan.environment})")
    out.result(yaml.safe_dump(plan.redacted(), sort_keys=False).rstrip())
