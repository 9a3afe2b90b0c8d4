"""``constellation index migrate``: move an existing index to the plan's layout."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from phases.index import migrate_index

app = typer.Typer(help="The vector index's layout.", no_args_is_help=True)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the steps; touch nothing.")
    ] = False,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            help="Seconds to wait where other processes may still use the layout they read "
            "(default: their refresh bound, 6 s).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Move the index to the plan's layout (index.partitions); resumable, in use meanwhile."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = Output(json_out)
    with out.tracker() as tracker:
        moves = migrate_index(
            plan,
            app_ctx.services(write=not dry_run),
            dry_run=dry_run,
            grace=grace,
            on_progress=tracker.advance,
            on_step=lambda r: tracker.note(f"{r.resource}: {r.outcome} {r.detail}"),
        )
    if json_out:
        out.json(moves)
        return
    for move in moves:
        title = f"index {move.index}: {move.before} → {move.after}"
        render.steps(out, move.steps, title + (" (dry run)" if dry_run else ""))
