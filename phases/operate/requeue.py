"""``requeue``: send notes again from the source database through the queue, or move dead
letters back (see :mod:`phases.operate.repair`)."""

from __future__ import annotations

from collections.abc import Iterator

from constellation.migration.source import Note
from constellation.producer import send_jobs, validate
from constellation.wiring.migration import Migration
from phases.operate.repair import Progress, RequeueReport, move_back, stale_notes

__all__ = ["RequeueReport", "requeue"]


def requeue(
    m: Migration,
    *,
    user_id: str | None = None,
    note_id: str | None = None,
    missing: bool = False,
    from_dlq: bool = False,
    everything: bool = False,
    version: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    on_progress: Progress | None = None,
) -> RequeueReport:
    """Send notes again from the source database through the queue (or move dead letters back).

    ``force`` marks the jobs so that they replace a stored record even when it is newer than the
    source row (what ``recover`` reports as "stale: newer than the source row")."""
    chosen = sum([missing, from_dlq, everything, user_id is not None])
    if chosen != 1 or (note_id is not None and user_id is None):
        raise ValueError(
            "choose one of --user (optionally with --note), --missing, --from-dlq, --all"
        )
    versions = [version] if version is not None else list(m.state.read().write_versions)
    if force and from_dlq:
        raise ValueError("--force is for notes sent from the source, not for --from-dlq")
    report = RequeueReport(dry_run)
    if from_dlq:
        return move_back(m, report, dry_run)
    notes: Iterator[Note]
    if missing:
        notes = (note for v in versions for note, _ in stale_notes(m, v, on_progress=on_progress))
    elif user_id is not None and note_id is not None:
        found = m.source.get(user_id, note_id)
        if found is None and note_id in m.source.skipped:
            raise ValueError(f"cannot send it: {m.source.skipped[note_id]}")
        if found is None:
            raise ValueError(f"note {note_id} of user {user_id} is not in the source database")
        notes = iter([found])
    else:
        notes = m.source.iter_notes(user_id=user_id)
    jobs = (note.job(v, force=force) for note in notes for v in versions)
    if dry_run:
        report.would_send = [(j.user_id, j.note_id, j.version) for j in jobs]
        report.skipped = list(m.source.skipped.values())
        return report
    advance = (lambda n: on_progress("requeue", None, n)) if on_progress else None
    report.sent = send_jobs(
        m.services.queue,
        validate(jobs, m.plan.models, m.plan.consumer.max_job_bytes),
        on_progress=advance,
    ).sent
    report.skipped = list(m.source.skipped.values())
    return report
