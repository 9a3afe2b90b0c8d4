"""``constellation demo``: the whole migration on the embedded default, with a summary."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json, seconds
from phases.demo.app import AppSummary
from phases.demo.app import app_only as build_app_only
from phases.demo.run import DemoSummary
from phases.demo.run import demo as run_demo


def demo(
    ctx: typer.Context,
    notes: Annotated[int, typer.Option("--notes", min=10, help="Notes in the sample app.")] = 800,
    users: Annotated[int, typer.Option("--users", min=1, help="Users owning them.")] = 20,
    dwell: Annotated[
        str, typer.Option("--dwell", help="Phase 2: dwell per traffic step (3s, 1m, ...).")
    ] = "3s",
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the plan's data folder first.")
    ] = False,
    app_only: Annotated[
        bool,
        typer.Option(
            "--app-only", help="Build the sample app only, to migrate it by hand (next commands)."
        ),
    ] = False,
    json_out: Json = False,
) -> None:
    """Build a sample notes app from Python's docs and migrate it through all four phases."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
    if app_only:
        with out.tracker() as tracker:
            built = build_app_only(
                plan,
                app_ctx.services(),
                notes=notes,
                users=users,
                reset=reset,
                on_event=tracker.note if out.err.is_terminal else out.info,
                on_progress=tracker.advance,
            )
        out.show(built, show_app)
        return
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
    if summary.complete:
        user, text = summary.try_query
        _sample_users(out, summary.sample_users)
        out.result(f"try a search: constellation query {shlex.quote(text)} --user {user}")
        out.result("every user and their notes: constellation users")


def _sample_users(out: Output, users: dict[str, int]) -> None:
    out.table(
        ["user", "notes"],
        sorted(users.items(), key=lambda kv: -kv[1]),
        title="a few of the sample app's users",
    )


def show_app(out: Output, app: AppSummary) -> None:
    out.table(
        ["", "value"],
        [
            ("notes", f"{app.notes:,} of {app.users} users in {app.source}"),
            ("old index", f"{app.old_index}: {app.old_vectors:,} vectors, filled the old way"),
            ("judged query set", app.golden),
        ],
        title="sample app",
    )
    _sample_users(out, app.sample_users)
    out.result("migrate it by hand, one command at a time:")
    for command in app.next_commands:
        out.result(f"  {command}")
