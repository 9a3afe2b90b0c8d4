"""``constellation rollback quick|full`` and ``constellation consumer enable|disable|status``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.examples import epilog
from cli.output import Output
from cli.params import DryRun, Force, Json, Reason
from phases.migrate import consumer as consumer_verb
from phases.migrate import rollback as verbs
from phases.migrate.transitions import describe

app = typer.Typer(
    help="Undo the migration: quick (reads back) or full (reads and writes back).",
    no_args_is_help=True,
)
consumer_app = typer.Typer(help="The consumer switch the workers obey.", no_args_is_help=True)


@app.command("quick", epilog=epilog("rollback quick"))
def quick(
    ctx: typer.Context,
    reason: Reason = "",
    force: Force = False,
    dry_run: DryRun = False,
    json_out: Json = False,
) -> None:
    """Every search back to the old system and the consumer paused; writes dual."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    with app_ctx.output.tracker() as tracker:  # from phase 4: the old system's catch-up
        report = verbs.rollback_quick(
            m, reason=reason, force=force, dry_run=dry_run, on_progress=tracker.advance
        )
    app_ctx.output.show(report, show_rollback)


@app.command("full", epilog=epilog("rollback full"))
def full(
    ctx: typer.Context,
    delete_service: Annotated[
        bool,
        typer.Option(
            "--delete-service", help="Also delete queues and index, after archiving the index."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --delete-service.")] = False,
    reason: Reason = "",
    force: Force = False,
    dry_run: DryRun = False,
    json_out: Json = False,
) -> None:
    """Writes and searches back to the old system; the service kept for a retry (or deleted)."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=delete_service and not dry_run)
    with app_ctx.output.tracker() as tracker:
        report = verbs.rollback_full(
            m,
            reason=reason,
            delete_service=delete_service,
            yes=yes,
            force=force,
            dry_run=dry_run,
            on_progress=tracker.advance,
        )
    app_ctx.output.show(report, show_rollback)


def show_rollback(out: Output, report: verbs.RollbackReport) -> None:
    render.steps(
        out, report.steps, f"rollback {report.kind}" + (" (dry run)" if report.dry_run else "")
    )
    if report.state is not None:
        render.state(out, report.state, describe(report.state))
    out.info(report.message)


def _consumer(ctx: typer.Context, enabled: bool | None, reason: str) -> None:
    app_ctx = context.get(ctx)
    report = consumer_verb.consumer(app_ctx.migration(write=False), enabled, reason=reason)
    app_ctx.output.show(report, show_consumer)


def show_consumer(out: Output, report: consumer_verb.ConsumerReport) -> None:
    state = "enabled" if report.enabled else "disabled"
    out.result(f"consumer {state}" + (" (changed)" if report.changed else ""))
    out.table(
        ["queue waiting", "in flight", "dead letters"],
        [(report.queue_visible, report.queue_in_flight, report.dead_letters)],
    )


@consumer_app.command("enable")
def enable(ctx: typer.Context, reason: Reason = "", json_out: Json = False) -> None:
    """Let workers take batches again."""
    _consumer(ctx, True, reason)


@consumer_app.command("disable")
def disable(ctx: typer.Context, reason: Reason = "", json_out: Json = False) -> None:
    """Stop workers taking new batches (they finish what they hold and wait)."""
    _consumer(ctx, False, reason)


@consumer_app.command("status")
def show(ctx: typer.Context, json_out: Json = False) -> None:
    """Show the consumer switch and the queue depths."""
    _consumer(ctx, None, "")
