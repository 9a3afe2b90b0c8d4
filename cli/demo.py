"""``constellation demo``: the whole migration on the embedded default, with a summary."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json, seconds
from phases.demo.run import DemoSummary
from phases.demo.run import demo as run_demo


def demo(
    ctx: typer.Context,
    notes: Annotated[int, typer.Option("--notes", min=10, help="Notes in the sample app.")] = 1500,
    users: Annotated[int, typer.Option("--users", min=1, help="Users owning them.")] = 20,
    dwell: Annotated[
        str, typer.Option("--dwell", help="Phase 2: dwell per traffic step (3s, 1m, ...).")
    ] = "3s",
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the plan's data folder first.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Build a sample notes app from Python's docs and migrate it through all four phases."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
    with out.tracker() as tracker:
        summary = run_demo(
            plan,
            app_ctx.services(),
            notes=notes,
            users=users,
            dwell=seconds(dwell) or 0.0,
            reset=reset,
            on_event=tracker.note if out.err.is_terminal else out.info,
            on_progress=tracker.advance,
        )
    out.show(summary, show_summary)


def show_summary(out: Output, summary: DemoSummary) -> None:
    out.table(
        ["step", "outcome", "seconds"],
        [(n, o, round(s, 1)) for n, o, s in summary.phases],
        title="demo steps",
    )
    ms = lambda v: "n/a" if v is None else f"{v:.1f} ms"  # noqa: E731
    out.table(
        ["", "value"],
        [
            (
                "notes migrated",
                f"{summary.migrated:,} of {summary.notes:,} ({summary.users} users)",
            ),
            (
                "consistency (mean top-10 overlap)",
                "n/a" if summary.mean_overlap is None else f"{summary.mean_overlap:.3f}",
            ),
            ("search p95, old system", ms(summary.old_p95_ms)),
            ("search p95, new system", ms(summary.new_p95_ms)),
            (
                "app searches / edits during the migration",
                f"{summary.searches:,} / {summary.edits:,}",
            ),
            ("gates (relative to this machine)", summary.gates),
            ("errors", summary.errors),
            ("dead letters", summary.dead_letters),
            ("time taken", f"{summary.seconds:,.1f} s"),
            ("migration", "complete (phase 4)" if summary.complete else "not complete"),
        ],
        title="demo summary",
    )
    if summary.quality is not None:
        render.quality(out, summary.quality)
        out.info(f"again at any time: constellation check quality --golden {summary.golden}")
