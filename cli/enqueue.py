"""``constellation enqueue``: send jobs to the embed queue, validated first."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from constellation.jobs import Job
from constellation.producer import SendReport, count_lines, read_jsonl, send_jobs, validate


def enqueue(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="userId of the note.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="noteId of the note.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="The note's text.")] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: the plan's).")
    ] = None,
    created: Annotated[
        int | None, typer.Option("--created", help="Epoch milliseconds (default: now).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", exists=True, dir_okay=False, help="JSON Lines file, one job per line."
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Validate jobs and send them to the embed queue (one job, or a JSON Lines file)."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
    if (file is None) == (user is None and note is None and text is None):
        raise typer.BadParameter("give either --file, or --user, --note and --text")
    queue = app_ctx.services(write=False).queue
    now_ms = int(time.time() * 1000)  # `created` must be a time a note was edited
    if file is not None:
        with out.progress(f"enqueue {file.name}", count_lines(file)) as advance:
            jobs = read_jsonl(file, plan.models, plan.consumer.max_job_bytes, now_ms=now_ms)
            report = send_jobs(queue, jobs, on_progress=advance)
    else:
        if user is None or note is None or text is None:
            raise typer.BadParameter("--user, --note and --text are all needed")
        job = Job(
            user,
            note,
            text,
            now_ms if created is None else created,
            plan.default_version if version is None else version,
        )
        report = send_jobs(
            queue, validate([job], plan.models, plan.consumer.max_job_bytes, now_ms=now_ms)
        )
    where = "line" if file is not None else "job"
    out.show(report, partial(show_sent, queue=plan.queue.name, where=where))
    if report.rejected:
        raise typer.Exit(1)


def show_sent(out: Output, report: SendReport, *, queue: str, where: str) -> None:
    """What was sent, and each rejected job by its ``where`` (line or job number)."""
    out.result(f"sent {report.sent:,} job(s) to {queue}")
    if report.rejected:
        out.table(
            [where, "reason", "detail"],
            [(r.line, r.reason, r.detail) for r in report.rejected],
            title=f"{len(report.rejected)} rejected (not sent)",
        )
