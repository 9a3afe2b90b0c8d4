"""``constellation query``: search one user's notes."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output, timestamp
from constellation.monitoring.session import query_metrics
from constellation.query import search


def query(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to search for.")],
    user: Annotated[str, typer.Option("--user", help="Search this user's notes (required).")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000)] = 10,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the plan's).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Search one user's notes with the worker's preprocessing and model."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    services = app_ctx.services(write=False)
    version = plan.default_version if version is None else version
    with query_metrics(plan) as observe:
        results = search(
            text,
            user_id=user,
            index=services.index(version),
            embedder=services.embedder(version),
            top_k=top_k,
            version=version,
            observe=observe,
        )
    out = Output(json_out)
    if json_out:
        out.json(results)
        return
    out.table(
        ["noteId", "score", "created"],
        [(r.note_id, round(r.score, 4), timestamp(r.created / 1000)) for r in results],
        title=f"{len(results)} result(s) for user {user}",
    )
