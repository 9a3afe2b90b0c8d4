"""``constellation query``: search one user's notes."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context
from cli.output import Output, timestamp
from cli.params import Json
from constellation.masking import location
from constellation.monitoring.worker_metrics import query_metrics
from constellation.query import SearchResult
from constellation.readback import explain_empty


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
    plan = app_ctx.plan()
    m = app_ctx.migration(write=False)
    if versions is not None:
        try:
            chosen = [int(v) for v in versions.split(",")]
        except ValueError:
            raise typer.BadParameter("--versions takes version numbers, e.g. 2,1") from None
    elif version is not None:
        chosen = [version]
    else:
        chosen = list(m.state.read().read_versions)
    unknown = [v for v in chosen if v not in plan.models]
    if unknown:
        raise typer.BadParameter(f"version(s) {unknown} are not declared in the plan")
    with query_metrics(plan, m.services) as observe:
        m.observe_query = observe
        run = m.version_search(chosen[0]) if len(chosen) == 1 else m.merged_search(chosen)
        results = run(text, user, top_k)
    if not results:
        # Nothing found: fine for a user without notes, an error where the user has records
        # (an index whose vectors cannot be read answers every search with nothing).
        for v in chosen:
            explain_empty(m.services.index(v), user, v, where=location(plan.index_location))
    app_ctx.output.show(results, partial(show_results, user=user))


def show_results(out: Output, results: list[SearchResult], *, user: str) -> None:
    out.table(
        ["noteId", "score", "version", "created"],
        [(r.note_id, round(r.score, 4), r.version, timestamp(r.created / 1000)) for r in results],
        title=f"{len(results)} result(s) for user {user}",
    )
