"""``constellation index migrate``: move an existing index to the plan's layout."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import DryRun, Json
from phases.operate.index import IndexMove, migrate_index
from phases.operate.manifest import ManifestRepair, repair_manifests

app = typer.Typer(help="The vector index's layout.", no_args_is_help=True)

Grace = Annotated[
    float | None,
    typer.Option(
        "--grace",
        help="Seconds to wait where other processes may still use the layout they read "
        "(default: their refresh bound, 6 s).",
    ),
]


@app.command("migrate")
def migrate(
    ctx: typer.Context, dry_run: DryRun = False, grace: Grace = None, json_out: Json = False
) -> None:
    """Move the index to the plan's layout (index.partitions); resumable, in use meanwhile."""
    app_ctx = context.get(ctx)
    out = app_ctx.output
    with out.tracker() as tracker:
        moves = migrate_index(
            app_ctx.plan(),
            app_ctx.services(write=not dry_run),
            dry_run=dry_run,
            grace=grace,
            on_progress=tracker.advance,
            on_step=lambda r: tracker.note(f"{r.resource}: {r.outcome} {r.detail}"),
        )
    out.show(moves, show_moves)


def show_moves(out: Output, moves: list[IndexMove]) -> None:
    for move in moves:
        dry = any(r.outcome.startswith("would") for r in move.steps)
        title = f"index {move.index}: {move.before} → {move.after}"
        render.steps(out, move.steps, title + (" (dry run)" if dry else ""))


@app.command("repair")
def repair(ctx: typer.Context, dry_run: DryRun = False, json_out: Json = False) -> None:
    """Set a damaged index manifest back from the partitions the index has."""
    app_ctx = context.get(ctx)
    repairs = repair_manifests(app_ctx.plan(), app_ctx.services(write=not dry_run), dry_run=dry_run)
    verb = "would record" if dry_run else "recorded"
    app_ctx.output.show(repairs, lambda out, found: show_repairs(out, found, verb))


def show_repairs(out: Output, repairs: list[ManifestRepair], verb: str) -> None:
    rows = [
        [r.index, r.damage or "ok", f"{verb} {r.layout}" if r.changed else r.layout]
        for r in repairs
    ]
    out.table(["index", "manifest", "layout"], rows, title="index manifests")
