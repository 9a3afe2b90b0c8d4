"""``constellation plan ...``: check plans."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import typer
import yaml

from cli import context
from cli.output import Output
from cli.params import Json

app = typer.Typer(help="Check plans.", no_args_is_help=True)


@app.command("validate")
def validate(ctx: typer.Context, json_out: Json = False) -> None:
    """Load and check a plan; print it resolved (secrets masked) or every error."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    show = partial(show_plan, path=app_ctx.plan_path, environment=plan.environment)
    app_ctx.output.show(plan.redacted(), show)


def show_plan(out: Output, resolved: dict[str, Any], *, path: Path, environment: str) -> None:
    """The resolved plan as YAML; that it is valid goes to stderr."""
    out.info(f"plan {path} is valid (environment {environment})")
    out.result(yaml.safe_dump(resolved, sort_keys=False).rstrip())
