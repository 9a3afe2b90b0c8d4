"""``constellation requeue``, ``constellation recover`` and ``constellation compare``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context, render
from cli.output import Output
from cli.params import Json
from constellation.readback import REBUILD
from phases import compare as compare_verb
from phases import recover as recover_verb
from phases import requeue as requeue_verb


def requeue(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Every note of this user.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="One note (with --user).")] = None,
    missing: Annotated[
        bool, typer.Option("--missing", help="Every note missing or stale in the new index.")
    ] = False,
    from_dlq: Annotated[
        bool, typer.Option("--from-dlq", help="Move valid dead letters back to the queue.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Every note (reprocess everything).")
    ] = False,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version (default: those being written).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent.")] = False,
    json_out: Json = False,
) -> None:
    """Re-send notes from the source database through the queue (or dead letters back)."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    out = app_ctx.output
    try:
        with out.tracker() as tracker:
            report = requeue_verb.requeue(
                m,
                user_id=user,
                note_id=note,
                missing=missing,
                from_dlq=from_dlq,
                everything=everything,
                version=version,
                dry_run=dry_run,
                on_progress=tracker.advance,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    out.show(report, partial(show_requeue, from_dlq=from_dlq))


def show_requeue(out: Output, report: requeue_verb.RequeueReport, *, from_dlq: bool) -> None:
    if report.dry_run:
        out.table(
            ["user", "note", "version"],
            report.would_send[:200],
            title=f"would send {len(report.would_send):,} job(s)",
        )
    else:
        out.result(
            f"sent {report.sent:,} job(s)"
            + (f" ({report.moved_from_dlq:,} from the dead-letter queue)" if from_dlq else "")
        )
    render.skipped(out, report.skipped)
    if report.left_in_dlq:
        out.table(
            ["message", "why it stays"],
            report.left_in_dlq,
            title=f"{len(report.left_in_dlq)} left in the dead-letter queue",
        )


def recover(
    ctx: typer.Context,
    requeue_them: Annotated[
        bool, typer.Option("--requeue", help="Send the affected notes again.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Find notes missing or stale in the new index, dead letters and recorded failures."""
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=False)
    with app_ctx.output.tracker() as tracker:
        report = recover_verb.recover(m, requeue_them=requeue_them, on_progress=tracker.advance)
    app_ctx.output.show(report, show_recovery)
    if report.unreadable:
        raise typer.Exit(1)


def show_recovery(out: Output, report: recover_verb.RecoveryReport) -> None:
    out.table(
        ["user", "note", "version", "problem", "last failure"],
        [
            (a.user_id, a.note_id, a.version, a.problem, a.last_failure)
            for a in report.affected[:500]
        ],
        title=f"{len(report.affected):,} affected",
    )
    if report.by_user:
        out.table(["user", "affected"], sorted(report.by_user.items()), title="by user")
    if report.unrecoverable:
        out.table(
            ["user", "note", "problem", "detail"],
            [(a.user_id, a.note_id, a.problem, a.detail) for a in report.unrecoverable],
            title=f"{len(report.unrecoverable)} dead letter(s) that cannot succeed (fix the producer, then purge)",
        )
    render.skipped(out, report.skipped)
    for check in report.unreadable:
        out.error(
            f"version {check.version}: the index's vectors cannot be read ({check.detail}); "
            f"requeueing will not help (the records look present): {REBUILD}"
        )
    if report.requeue is not None:
        out.result(f"requeued {report.requeue.sent:,} job(s)")
    elif report.affected:
        out.info("send them again with `constellation recover --requeue`")


def compare(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The note's user.")],
    note: Annotated[str, typer.Option("--note", help="The note.")],
    version: Annotated[int | None, typer.Option("--version")] = None,
    json_out: Json = False,
) -> None:
    """One note in the old and the new system side by side."""
    app_ctx = context.get(ctx)
    report = compare_verb.compare(app_ctx.migration(write=False), user, note, version)
    app_ctx.output.show(report, show_comparison)


def show_comparison(out: Output, report: compare_verb.NoteComparison) -> None:
    keys = sorted(set(report.old.metadata) | set(report.new.metadata))
    rows: list[tuple[object, ...]] = [("present", report.old.present, report.new.present)]
    rows += [(k, report.old.metadata.get(k), report.new.metadata.get(k)) for k in keys]
    out.table(["", "old", "new"], rows, title=f"note {report.note_id} of {report.user_id}")
    if report.cosine is not None:
        out.result(f"cosine similarity of the two vectors: {report.cosine:.6f}")
    if report.note:
        out.info(report.note)
