"""``recover``: every note missing or stale in the new index, every dead letter, and the
worker's recorded failures for them, per user; optionally sent again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from constellation.jobs import Job
from constellation.migration.runtime import Migration
from constellation.migration.source import SkippedNote
from constellation.producer import send_jobs, validate
from constellation.readback import Readback, read_back
from phases.repair import (
    Progress,
    RequeueReport,
    ids,
    move_back,
    peek_dead_letters,
    stale_notes,
    validity,
)


@dataclass(frozen=True)
class Affected:
    """One note (or dead letter) that needs repair."""

    user_id: str | None
    note_id: str | None
    version: int | None
    problem: str
    detail: str = ""
    #: the worker's last recorded failure for this note, e.g. "model_error at 2026-..."
    last_failure: str | None = None


@dataclass
class RecoveryReport:
    affected: list[Affected] = field(default_factory=list)
    #: dead letters that can never succeed (malformed bodies), with their reasons
    unrecoverable: list[Affected] = field(default_factory=list)
    by_user: dict[str, int] = field(default_factory=dict)
    requeue: RequeueReport | None = None
    #: rows of the notes source that are not usable notes (never sent, never "missing")
    skipped: list[SkippedNote] = field(default_factory=list)
    #: versions whose stored vectors cannot be read back (every search finds nothing there,
    #: although each record looks present): the index itself needs rebuilding
    unreadable: list[Readback] = field(default_factory=list)


def recover(
    m: Migration, *, requeue_them: bool = False, on_progress: Progress | None = None
) -> RecoveryReport:
    """Find notes missing or stale in the new index, dead letters and recorded failures."""
    report = RecoveryReport()
    last_failure: dict[tuple[str | None, str | None], str] = {}
    for failure in m.failures.since(0.0):
        when = datetime.fromtimestamp(failure.at, tz=UTC).isoformat(timespec="seconds")
        last_failure[(failure.user_id, failure.note_id)] = f"{failure.error_type} at {when}"
    versions = list(m.state.read().write_versions)
    for version in versions:
        readback = read_back(m.services.index(version), version)
        if not readback.ok:
            report.unreadable.append(readback)
    for version in versions:
        for note, problem in stale_notes(m, version, on_progress=on_progress):
            report.affected.append(
                Affected(
                    note.user_id,
                    note.id,
                    version,
                    problem,
                    last_failure=last_failure.get((note.user_id, note.id)),
                )
            )
    check = validity(m)
    for message in peek_dead_letters(m):
        user, note_id, version = ids(message)
        reason = message.attributes.get("reason", "redriven")
        why = check(message)
        entry = Affected(
            user,
            note_id,
            version,
            f"dead letter ({reason})",
            message.attributes.get("detail", ""),
            last_failure.get((user, note_id)),
        )
        (report.affected if why is None else report.unrecoverable).append(entry)
    report.skipped = list(m.source.skipped.values())
    for item in report.affected:
        key = item.user_id or "?"
        report.by_user[key] = report.by_user.get(key, 0) + 1
    if requeue_them and report.affected:
        sent = RequeueReport(False)
        if any(a.problem.startswith("dead letter") for a in report.affected):
            sent = move_back(m, sent, False)
        jobs: list[Job] = []
        for item in report.affected:
            if (
                item.problem.startswith("dead letter")
                or item.user_id is None
                or item.note_id is None
            ):
                continue
            found = m.source.get(item.user_id, item.note_id)
            if found is not None and item.version is not None:
                jobs.append(found.job(item.version))
        if jobs:
            sent.sent += send_jobs(
                m.services.queue, validate(jobs, m.plan.models, m.plan.consumer.max_job_bytes)
            ).sent
        report.requeue = sent
    return report
