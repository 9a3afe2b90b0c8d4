"""``recover``: every note missing or stale in the new index, every dead letter, and the
worker's recorded failures for them, per user; optionally sent again."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from constellation.jobs import Job
from constellation.migration.source import SkippedNote
from constellation.producer import send_jobs, validate
from constellation.readback import Readback, read_back
from constellation.timefields import EPOCH_MS, EPOCH_SECONDS
from constellation.wiring.migration import Migration
from phases.operate.repair import (
    Finding,
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
    #: the worker's last recorded failure for this note (its error type), and when
    last_failure: str | None = None
    last_failure_at: float | None = field(default=None, metadata=EPOCH_SECONDS)
    #: the stored record's time and the source row's last edit, where they decide
    record_created: int | None = field(default=None, metadata=EPOCH_MS)
    source_edited: int | None = field(default=None, metadata=EPOCH_MS)
    #: what fixes it: ``requeue``, ``requeue --force`` (a record newer than its source row),
    #: or for a dead letter ``requeue --from-dlq``
    fix: str = "requeue"

    @property
    def command(self) -> str:
        """The command that fixes this one note (or every dead letter)."""
        if self.fix == "requeue --from-dlq" or self.user_id is None or self.note_id is None:
            return "constellation requeue --from-dlq"
        force = " --force" if self.fix == "requeue --force" else ""
        version = "" if self.version is None else f" --version {self.version}"
        return (
            f"constellation requeue --user {shlex.quote(self.user_id)} "
            f"--note {shlex.quote(self.note_id)}{version}{force}"
        )

    __json_properties__ = ("command",)


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

    @property
    def need_force(self) -> list[Affected]:
        """Records newer than their source rows: ``--requeue`` leaves them (the worker would
        skip a plain job as older); ``requeue --force`` replaces them."""
        return [a for a in self.affected if a.fix == "requeue --force"]


def recover(
    m: Migration, *, requeue_them: bool = False, on_progress: Progress | None = None
) -> RecoveryReport:
    """Find notes missing or stale in the new index, dead letters and recorded failures."""
    report = RecoveryReport()
    last_failure: dict[tuple[str | None, str | None], tuple[str, float]] = {}
    for failure in m.failures.since(0.0):
        last_failure[(failure.user_id, failure.note_id)] = (failure.error_type, failure.at)
    versions = list(m.state.read().write_versions)
    for version in versions:
        readback = read_back(m.services.index(version), version)
        if not readback.ok:
            report.unreadable.append(readback)
    for version in versions:
        for note, finding in stale_notes(m, version, on_progress=on_progress):
            report.affected.append(_affected(note.user_id, note.id, version, finding, last_failure))
    check = validity(m)
    for message in peek_dead_letters(m):
        user, note_id, version = ids(message)
        reason = message.attributes.get("reason", "redriven")
        why = check(message)
        failed, failed_at = last_failure.get((user, note_id), (None, None))
        entry = Affected(
            user,
            note_id,
            version,
            f"dead letter ({reason})",
            message.attributes.get("detail", ""),
            failed,
            failed_at,
            fix="requeue --from-dlq",
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
            if item.fix != "requeue" or item.user_id is None or item.note_id is None:
                continue  # dead letters moved above; a newer record needs --force
            found = m.source.get(item.user_id, item.note_id)
            if found is not None and item.version is not None:
                jobs.append(found.job(item.version))
        if jobs:
            sent.sent += send_jobs(
                m.services.queue, validate(jobs, m.plan.models, m.plan.consumer.max_job_bytes)
            ).sent
        report.requeue = sent
    return report


def _affected(
    user_id: str,
    note_id: str,
    version: int,
    finding: Finding,
    last_failure: dict[tuple[str | None, str | None], tuple[str, float]],
) -> Affected:
    failed, failed_at = last_failure.get((user_id, note_id), (None, None))
    return Affected(
        user_id,
        note_id,
        version,
        finding.problem,
        last_failure=failed,
        last_failure_at=failed_at,
        record_created=finding.record_created,
        source_edited=finding.source_edited,
        fix=finding.fix,
    )
