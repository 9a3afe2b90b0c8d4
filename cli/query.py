"""``constellation query``: search one user's notes."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from cli.output import Output, timestamp
from cli.params import Json
from constellation.monitoring.worker_metrics import query_metrics
from phases.operate.query import SCORE_MEANING, Answer
from phases.operate.query import query as search_notes


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
        answer = search_notes(m, text, user, top_k, chosen)
    app_ctx.output.show(answer, show_answer, as_json=lambda a: a.searched.results)


def show_answer(out: Output, answer: Answer) -> None:
    found = answer.searched
    if not found.results:
        out.result(f"0 results for user {found.user_id}: {found.explanation}")
        if answer.hint:
            out.info(answer.hint)
        return
    out.table(
        ["noteId", "score", "note", "version", "created"],
        [
            (
                r.note_id,
                round(r.score, 3),
                answer.snippets.get(r.note_id, "-"),
                r.version,
                timestamp(r.created / 1000),
            )
            for r in found.results
        ],
        title=f"{len(found.results)} result(s) for user {found.user_id}",
        caption=SCORE_MEANING,
    )
