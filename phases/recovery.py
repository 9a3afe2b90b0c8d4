"""Repair: find what is missing or stale in the new index, and send it again through the queue.

A source note is **missing** when the new index has no record for it, and **stale** when its
record is older than the note's last edit or its content hash differs from what the note's
current text would give (same preprocessing, same model). Dead-letter messages are re-validated
before they go back: those that still cannot succeed stay where they are, with their reasons.
On SQS the move is receive, send, then delete (there is no atomic move), so a crash in between
may duplicate a job, which the worker's idempotency makes harmless, and never loses one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from constellation import records
from constellation.jobs import Job, Rejection, ids_of, parse_job
from constellation.preprocess import prepare
from constellation.producer import send_jobs, validate
from constellation.queues.moves import move_messages
from constellation.queues.port import Message
from phases.context import Migration
from phases.source import Note

Progress = Callable[[str, int | None, int], None]
PAGE = 200


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
class RequeueReport:
    dry_run: bool
    sent: int = 0
    would_send: list[tuple[str, str, int]] = field(default_factory=list)
    moved_from_dlq: int = 0
    left_in_dlq: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RecoveryReport:
    affected: list[Affected] = field(default_factory=list)
    #: dead letters that can never succeed (malformed bodies), with their reasons
    unrecoverable: list[Affected] = field(default_factory=list)
    by_user: dict[str, int] = field(default_factory=dict)
    requeue: RequeueReport | None = None


def stale_notes(
    m: Migration, version: int, *, user_id: str | None = None, on_progress: Progress | None = None
) -> Iterator[tuple[Note, str]]:
    """Source notes whose record in the new index is missing or stale, with the reason."""
    model = m.plan.model(version).name
    embedder = m.services.embedder(version)
    index = m.services.index(version)
    total = m.source.count(user_id)
    page: list[Note] = []

    def check(notes: list[Note]) -> Iterator[tuple[Note, str]]:
        prepared = prepare([n.content for n in notes], embedder)
        stored = index.get([records.record_id(n.user_id, n.id, version) for n in notes])
        for note, text in zip(notes, prepared, strict=True):
            record = stored.get(records.record_id(note.user_id, note.id, version))
            if text.empty:
                if record is not None:
                    yield note, "stale: the note is empty but a record exists"
            elif record is None:
                yield note, "missing"
            elif records.created_of(record.metadata) < note.edited:
                yield note, "stale: older than the note's last edit"
            elif record.metadata.get(records.HASH) != records.content_hash(text.text, model):
                yield note, "stale: content differs"
        if on_progress:
            on_progress(f"scan v{version}", total, len(notes))

    for note in m.source.iter_notes(user_id=user_id):
        page.append(note)
        if len(page) == PAGE:
            yield from check(page)
            page = []
    if page:
        yield from check(page)


def _validity(m: Migration) -> Callable[[Message], str | None]:
    """None for a dead letter that may go back to the queue, else why it must stay."""

    def reason(message: Message) -> str | None:
        parsed = parse_job(
            message.body, versions=m.plan.models, max_bytes=m.plan.consumer.max_job_bytes
        )
        return f"{parsed.reason}: {parsed.detail}" if isinstance(parsed, Rejection) else None

    return reason


def peek_dead_letters(m: Migration, limit: int = 10_000) -> list[Message]:
    """Read the dead-letter queue without consuming it (messages are released at once)."""
    dlq = m.services.dead_letter
    seen: list[Message] = []
    while len(seen) < limit:
        batch = dlq.receive(max_messages=min(100, limit - len(seen)), visibility_timeout=60)
        if not batch:
            break
        seen += batch
    if seen:
        dlq.change_visibility_batch([msg.receipt for msg in seen], 0)
    return seen


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
    on_progress: Progress | None = None,
) -> RequeueReport:
    """Send notes again from the source database through the queue (or move dead letters back)."""
    chosen = sum([missing, from_dlq, everything, user_id is not None])
    if chosen != 1 or (note_id is not None and user_id is None):
        raise ValueError(
            "choose one of --user (optionally with --note), --missing, --from-dlq, --all"
        )
    versions = [version] if version is not None else list(m.state.read().write_versions)
    report = RequeueReport(dry_run)
    if from_dlq:
        return _from_dlq(m, report, dry_run)
    notes: Iterator[Note]
    if missing:
        notes = (note for v in versions for note, _ in stale_notes(m, v, on_progress=on_progress))
    elif user_id is not None and note_id is not None:
        found = m.source.get(user_id, note_id)
        if found is None:
            raise ValueError(f"note {note_id} of user {user_id} is not in the source database")
        notes = iter([found])
    else:
        notes = m.source.iter_notes(user_id=user_id)
    jobs = (note.job(v) for note in notes for v in versions)
    if dry_run:
        report.would_send = [(j.user_id, j.note_id, j.version) for j in jobs]
        return report
    advance = (lambda n: on_progress("requeue", None, n)) if on_progress else None
    report.sent = send_jobs(
        m.services.queue, validate(jobs, m.plan.models), on_progress=advance
    ).sent
    return report


def _from_dlq(m: Migration, report: RequeueReport, dry_run: bool) -> RequeueReport:
    check = _validity(m)
    if dry_run:
        for message in peek_dead_letters(m):
            why = check(message)
            if why is None:
                report.would_send.append(_ids(message))
            else:
                report.left_in_dlq.append((message.id, why))
        return report
    # Held as long as a worker would hold a job: after a crash they reappear that soon.
    hold = float(m.plan.queue.visibility_timeout)
    moved = move_messages(m.services.dead_letter, m.services.queue, accept=check, hold_seconds=hold)
    report.moved_from_dlq = moved.moved
    report.left_in_dlq = [(message_id, why) for message_id, why in moved.left]
    report.sent = moved.moved
    return report


def _ids(message: Message) -> tuple[str, str, int]:
    """User, note and version of a dead letter, for display ("?" where it has none)."""
    user, note, version = ids_of(message.body)
    return user or "?", note or "?", version or 0


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
    check = _validity(m)
    for message in peek_dead_letters(m):
        user, note_id, version = _ids(message)
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
    for item in report.affected:
        key = item.user_id or "?"
        report.by_user[key] = report.by_user.get(key, 0) + 1
    if requeue_them and report.affected:
        sent = RequeueReport(False)
        if any(a.problem.startswith("dead letter") for a in report.affected):
            sent = _from_dlq(m, sent, False)
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
            sent.sent += send_jobs(m.services.queue, validate(jobs, m.plan.models)).sent
        report.requeue = sent
    return report


@dataclass(frozen=True)
class Side:
    present: bool
    metadata: dict[str, object]


@dataclass(frozen=True)
class NoteComparison:
    user_id: str
    note_id: str
    old: Side
    new: Side
    #: cosine similarity of the two vectors, when both exist and come from the same model
    cosine: float | None
    note: str = ""


def compare(m: Migration, user_id: str, note_id: str, version: int | None = None) -> NoteComparison:
    """One note in the old and the new system, side by side."""
    version = m.plan.default_version if version is None else version
    record_id = records.record_id(user_id, note_id, version)
    new = m.services.index(version).get([record_id], include_vectors=True).get(record_id)
    old = m.legacy.get(user_id, note_id) if hasattr(m.legacy, "get") else None
    cosine = None
    note = ""
    if old is not None and new is not None and old.vector is not None and new.vector is not None:
        if old.metadata.get(records.MODEL) == new.metadata.get(records.MODEL):
            cosine = _cosine(list(old.vector), list(new.vector))
        else:
            note = "different models: vectors are not comparable"
    elif not hasattr(m.legacy, "get"):
        note = "the legacy adapter cannot fetch single records"
    return NoteComparison(
        user_id,
        note_id,
        Side(old is not None, dict(old.metadata) if old else {}),
        Side(new is not None, dict(new.metadata) if new else {}),
        cosine,
        note,
    )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
