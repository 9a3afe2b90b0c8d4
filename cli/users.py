"""``constellation users``: who has notes, to search as."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from phases.operate.users import UsersReport, list_users


def users(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Users shown at most.")] = 50,
    json_out: Json = False,
) -> None:
    """List the users who have notes, the most first, with their records in the new index."""
    app_ctx = context.get(ctx)
    report = list_users(app_ctx.migration(write=False), limit=limit)
    app_ctx.output.show(report, show_users)


def show_users(out: Output, report: UsersReport) -> None:
    if not report.users:
        out.result("no notes yet: the notes table is empty")
        return
    shown = len(report.users)
    more = f" (the {shown} with the most notes)" if shown < report.total_users else ""
    out.table(
        ["user", "notes", f"records (v{report.version})"],
        [(u.user, u.notes, u.records) for u in report.users],
        title=f"{report.total_users:,} user(s) with notes{more}",
    )
    first = report.users[0].user
    out.info(f"search one: constellation query 'words from a note' --user {first}")
