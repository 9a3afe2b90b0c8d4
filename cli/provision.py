"""``constellation provision``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output
from phases.provision import provision as provision_resources


def provision(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the steps; touch nothing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Create the embed queue, its dead-letter queue and the vector index (safe to repeat)."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = Output(json_out)
    with out.status(f"provisioning {plan.name} ({plan.environment})") as update:
        report = provision_resources(
            plan,
            app_ctx.services(write=not dry_run),
            dry_run=dry_run,
            on_result=lambda r: update(f"{r.resource}: {r.outcome}"),
        )
    if json_out:
        out.json(report)
        return
    rows = [(r.resource, r.outcome, r.detail) for r in report.results]
    title = f"provision {plan.name} ({plan.environment})" + (" - dry run" if dry_run else "")
    out.table(["resource", "outcome", "detail"], rows, title=title)
    if dry_run:
        out.info("dry run: nothing was changed")
    elif not report.changed:
        out.info("everything already exists; nothing was changed")
