"""``constellation requeue``, ``constellation recover`` and ``constellation compare``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context, render
from cli.output import Output, timestamp, timestamp_ms
from cli.params import Json
from constellation.jsondata import iso_time, jsonable
from constellation.readback import REBUILD
from phases.checks import compare as compare_verb
from phases.operate import recover as recover_verb
from phases.operate import requeue as requeue_verb


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
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace stored records even where they are newer than the source row "
            '(recover\'s "stale: newer than the source row").',
        ),
    ] = False,
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
                force=force,
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
        [
            "user",
            "note",
            "version",
            "problem",
            "record time",
            "source edited",
            "fix",
            "last failure",
        ],
        [
            (
                a.user_id,
                a.note_id,
                a.version,
                a.problem,
                timestamp_ms(a.record_created),
                timestamp_ms(a.source_edited),
                a.fix,
                f"{a.last_failure} at {timestamp(a.last_failure_at)}" if a.last_failure else None,
            )
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
    elif len(report.affected) > len(report.need_force):
        out.info("send them again with `constellation recover --requeue`")
    if report.need_force:
        first = report.need_force[0]
        out.info(
            f"{len(report.need_force):,} record(s) are newer than their source rows: the worker "
            "keeps a newer record, so `--requeue` leaves them. To replace them with the "
            "source's text: `constellation requeue --missing --force` (one note: "
            f"`{first.command}`; see it with `constellation compare`)"
        )


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
    app_ctx.output.show(report, show_comparison, as_json=comparison_json)


def comparison_json(report: compare_verb.NoteComparison) -> dict[str, object]:
    """The comparison as JSON, its times in ISO 8601."""
    data: dict[str, object] = jsonable(report)
    for side in ("source", "old", "new"):
        meta = data[side]["metadata"]  # type: ignore[index]
        for key in TIME_KEYS:
            if isinstance(meta.get(key), int | float):
                meta[key] = iso_time(meta[key], "ms")
    return data


#: metadata keys that hold epoch milliseconds (records' ``created``, the source row's times)
TIME_KEYS = ("created", "noteCreated", "noteUpdated")
#: the order of compare's rows (others follow, sorted)
ORDER = ("userId", "noteId", "version", *TIME_KEYS, "contentHash", "model", "text")


def show_comparison(out: Output, report: compare_verb.NoteComparison) -> None:
    sides = (report.source, report.old, report.new)
    found = set().union(*(s.metadata for s in sides))
    keys = [k for k in ORDER if k in found] + sorted(found - set(ORDER))
    rows: list[tuple[object, ...]] = [("present", *(s.present for s in sides))]
    for key in keys:
        if key == "text":
            continue  # below the table: it would make every column as wide as the text
        values = [s.metadata.get(key) for s in sides]
        if key in TIME_KEYS:
            values = [timestamp_ms(v) if isinstance(v, int | float) else v for v in values]
        elif key == "contentHash":  # enough to tell them apart; --json has them whole
            values = [v[:12] if isinstance(v, str) else v for v in values]
        rows.append((key, *values))
    out.table(
        ["", "source row", "old", "new"], rows, title=f"note {report.note_id} of {report.user_id}"
    )
    if "text" in report.source.metadata:
        out.result(f"source text: {report.source.metadata['text']}")
    if report.cosine is not None:
        out.result(f"cosine similarity of the two vectors: {report.cosine:.6f}")
    if report.note:
        out.info(report.note)
