"""What needs repair: source notes missing or stale in the new index, and dead letters.

A source note is **missing** when the new index has no record for it, and **stale** when its
record is older than the note's last edit, or newer than it with other content (an edit the
source never got, or a clock ahead), or of the same time with a content hash that differs
from what the note's current text would give (same preprocessing, same model). Every finding
says what fixes it: a plain requeue, except for a record newer than its source row, which the
worker keeps (an older edit never overwrites a newer one) unless the job is forced
(``requeue --force``). Dead-letter messages are re-validated
before they go back: those that still cannot succeed stay where they are, with their reasons.
On SQS the move is receive, send, then delete (there is no atomic move), so a crash in between
may duplicate a job, which the worker's idempotency makes harmless, and never loses one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from constellation import records
from constellation.jobs import Rejection, ids_of, parse_job
from constellation.migration.source import Note, SkippedNote
from constellation.preprocess import normalize, prepare
from constellation.queues.moves import move_messages
from constellation.queues.port import Message
from constellation.wiring.migration import Migration

Progress = Callable[[str, int | None, int], None]
PAGE = 200


@dataclass(frozen=True)
class Finding:
    """Why a note needs repair, the two times that decide it, and what fixes it."""

    problem: str
    #: the stored record's ``created`` and the source row's last edit (epoch ms)
    record_created: int | None = None
    source_edited: int | None = None
    #: only a forced requeue fixes it: the record is newer than the source row
    force: bool = False

    @property
    def fix(self) -> str:
        return "requeue --force" if self.force else "requeue"


@dataclass
class RequeueReport:
    dry_run: bool
    sent: int = 0
    would_send: list[tuple[str, str, int]] = field(default_factory=list)
    moved_from_dlq: int = 0
    left_in_dlq: list[tuple[str, str]] = field(default_factory=list)
    #: rows of the notes source that are not usable notes, not sent
    skipped: list[SkippedNote] = field(default_factory=list)


def _differs(metadata: Mapping[str, object], content: str, prepared: str, model: str) -> bool:
    """Whether a record holds another text than the note's: by its source hash where it has
    one (the worker's own test for an unchanged note), else by its content hash."""
    source = metadata.get(records.SOURCE)
    if source is not None:
        return source != records.source_hash(normalize(content), model)
    return metadata.get(records.HASH) != records.content_hash(prepared, model)


def stale_notes(
    m: Migration, version: int, *, user_id: str | None = None, on_progress: Progress | None = None
) -> Iterator[tuple[Note, Finding]]:
    """Source notes whose record in the new index is missing or stale, with the reason."""
    model = m.plan.model(version).name
    embedder = m.services.embedder(version)
    index = m.services.index(version)
    total = m.source.count(user_id)
    page: list[Note] = []

    def check(notes: list[Note]) -> Iterator[tuple[Note, Finding]]:
        prepared = prepare([n.content for n in notes], embedder)
        stored = index.get([records.record_id(n.user_id, n.id, version) for n in notes])
        for note, text in zip(notes, prepared, strict=True):
            record = stored.get(records.record_id(note.user_id, note.id, version))
            if record is None:
                if not text.empty:
                    yield note, Finding("missing", source_edited=note.edited)
                continue
            created = records.created_of(record.metadata)
            newer = created > note.edited
            if text.empty:
                problem = "stale: the note is empty but a record exists"
            elif created < note.edited:
                problem = "stale: older than the note's last edit"
            elif _differs(record.metadata, note.content, text.text, model):
                what = "newer than the source row" if newer else "a different content hash"
                problem = f"stale: {what}"
            else:
                continue
            # An emptied note's job removes a newer record only when forced, too.
            yield note, Finding(problem, created, note.edited, force=newer)
        if on_progress:
            on_progress(f"scan v{version}", total, len(notes))

    for note in m.source.iter_notes(user_id=user_id):
        page.append(note)
        if len(page) == PAGE:
            yield from check(page)
            page = []
    if page:
        yield from check(page)


def validity(m: Migration) -> Callable[[Message], str | None]:
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


def move_back(m: Migration, report: RequeueReport, dry_run: bool) -> RequeueReport:
    """Move the dead letters that can succeed back to the queue (``dry_run``: list them)."""
    check = validity(m)
    if dry_run:
        for message in peek_dead_letters(m):
            why = check(message)
            if why is None:
                report.would_send.append(ids(message))
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


def ids(message: Message) -> tuple[str, str, int]:
    """User, note and version of a dead letter, for display ("?" where it has none)."""
    user, note, version = ids_of(message.body)
    return user or "?", note or "?", version or 0
