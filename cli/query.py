"""``constellation query``: search one user's notes."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context
from cli.output import Output, timestamp
from cli.params import Json
from constellation.monitoring.worker_metrics import query_metrics
from constellation.query import SearchResult


def query(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to search for.")],
    user: Annotated[str, typer.Option("--user", help="Search this user's notes (required).")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000)] = 10,
    version: Annotated[int | None, typer.Option("--version", help="One model version.")] = None,
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="Merge model versions, newest preferred, e.g. 2,1."),
    ] = None,
    json_out: Json = False,
) -> None:
    """Search one user's notes with the worker's preprocessing and model.

    By default the versions the migration state reads (the plan's default before any upgrade).
    """
    app_ctx = context.get(ctx)
    if versions is not None:
        try:
            chosen: list[int] | None = [int(v) for v in versions.split(",")]
        except ValueError:
            raise typer.BadParameter("--versions takes version numbers, e.g. 2,1") from None
    else:
        chosen = None if version is None else [version]
    plan = app_ctx.plan()
    services = app_ctx.services(write=False)
    with query_metrics(plan, services) as observe:
        m = app_ctx.migration(services=services, observe_query=observe)
        found = m.search(text, user, top_k, chosen)
    app_ctx.output.show(found.results, partial(show_results, user=user))


def show_results(out: Output, results: list[SearchResult], *, user: str) -> None:
    out.table(
        ["noteId", "score", "version", "created"],
        [(r.note_id, round(r.score, 4), r.version, timestamp(r.created / 1000)) for r in results],
        title=f"{len(results)} result(s) for user {user}",
    )
