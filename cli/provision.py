"""``constellation provision``."""

from __future__ import annotations

import typer

from cli import context
from cli.output import Output
from cli.params import DryRun, Json
from phases.operate.provision import ProvisionReport
from phases.operate.provision import provision as provision_resources


def provision(ctx: typer.Context, dry_run: DryRun = False, json_out: Json = False) -> None:
    """Create the embed queue, its dead-letter queue and the vector index (safe to repeat)."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
    with out.status(f"provisioning {plan.name} ({plan.environment})") as update:
        report = provision_resources(
            plan,
            app_ctx.services(write=not dry_run),
            dry_run=dry_run,
            on_result=lambda r: update(f"{r.resource}: {r.outcome}"),
        )
    out.show(report, show_provision)


def show_provision(out: Output, report: ProvisionReport) -> None:
    rows = [(r.resource, r.outcome, r.detail) for r in report.results]
    title = f"provision {report.plan} ({report.environment})" + (
        " - dry run" if report.dry_run else ""
    )
    out.table(["resource", "outcome", "detail"], rows, title=title)
    if report.dry_run:
        out.info("dry run: nothing was changed")
    elif not report.changed:
        out.info("everything already exists; nothing was changed")
