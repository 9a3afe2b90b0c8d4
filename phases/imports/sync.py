"""What every import shares: diff a source against its last import, then write through the app.

A source lists its items with a content fingerprint (:class:`Entry`); only items whose
fingerprint differs from the ledger's, or that the ledger has never seen, are read and sent.
An item the ledger holds but the source no longer lists becomes a removal. Writes go the way
the app's own writes go: the note's row in the notes source first (the source of truth, which
``recover`` and the backfill read), then the router's write (a batch at a time), which follows the migration's
write mode (old index inline, the queue, or both while dual). The ledger is written after the
notes, a batch at a time, so a crash re-sends at most one batch (harmless: unchanged content is
skipped by its hash) and never loses one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from constellation.errors import ImportSourceError
from constellation.jobs import Job
from constellation.ledger.imports import ImportedItem, ImportLedger
from constellation.migration.source import Note, delete_notes, insert_notes
from constellation.wiring.migration import Migration

#: progress callback: (what, total or None, advance by)
Progress = Callable[[str, int | None, int], None]
#: items read and written per round (and per ledger transaction)
BATCH = 100


@dataclass(frozen=True)
class Entry:
    """One item a source lists: its stable key, a title for reports, its content fingerprint."""

    key: str
    title: str
    fingerprint: str
    #: its size in bytes where the source knows it without reading it (stat, ZipInfo)
    size: int | None = None
    #: why it cannot be read (unreadable file, damaged inner zip): skipped and reported, its
    #: earlier note kept
    problem: str = ""


@dataclass(frozen=True)
class Document:
    """An item's content: ``text`` None when it is not a note (``skipped`` says why)."""

    entry: Entry
    text: str | None
    #: the item's last change (commit or edit time), epoch milliseconds
    created: int
    skipped: str = ""


class ImportSource(Protocol):
    """A place notes are imported from (a git repository, a folder, a Notion export)."""

    kind: str
    #: where it is, for reports and the default source name
    location: str
    #: a marker of the version imported (git: the commit), or None
    marker: str | None

    def entries(self) -> list[Entry]:
        """Every item now, with its fingerprint (cheap: content is read by :meth:`read`)."""
        ...

    def read(self, entries: Sequence[Entry]) -> Iterator[Document]:
        """The content and time of ``entries``, in any order."""
        ...


@dataclass(frozen=True)
class ImportedNote:
    key: str
    title: str
    note_id: str


@dataclass
class ImportReport:
    """What an import sent, left unchanged, removed and skipped."""

    kind: str
    location: str
    name: str
    source_id: str
    user_id: str
    write_mode: str
    dry_run: bool
    #: the source's marker at the previous import and now (git: commits)
    previous_marker: str | None = None
    marker: str | None = None
    sent: list[ImportedNote] = field(default_factory=list)
    unchanged: int = 0
    removed: list[ImportedNote] = field(default_factory=list)
    #: items that are not notes: (title, why)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: dual writes where one side failed (old / new), counted by the router
    write_failures: dict[str, int] = field(default_factory=dict)

    __json_properties__ = ("counts",)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "sent": len(self.sent),
            "unchanged": self.unchanged,
            "removed": len(self.removed),
            "skipped": len(self.skipped),
        }


def source_id(kind: str, name: str, user_id: str) -> str:
    """The stable id of a source: the same kind, name and user is the same source."""
    digest = hashlib.sha256(f"{kind}\0{name}\0{user_id}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def note_id(kind: str, source: str, key: str) -> str:
    """The stable note id of an item: unique per source (and so per user), at most 64 chars."""
    digest = hashlib.sha256(f"{source}\0{key}".encode("utf-8", "surrogatepass"))
    return f"{kind}-{digest.hexdigest()[:32]}"


def synchronize(
    m: Migration,
    source: ImportSource,
    *,
    user_id: str,
    name: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
    on_progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Send what changed in ``source`` since its last import, and removals for what is gone.

    A source that lists nothing while its last import sent notes is refused (a wrong path or
    glob must not remove everything) unless ``allow_empty``."""
    if not user_id.strip():
        raise ValueError("an import needs a user id (--user)")
    name = name or source.location
    sid = source_id(source.kind, name, user_id)
    ledger = ImportLedger.for_plan(m.plan)
    try:
        last = ledger.source(sid)
        report = ImportReport(
            source.kind,
            source.location,
            name,
            sid,
            user_id,
            m.state.read().write_mode,
            dry_run,
            previous_marker=last.marker if last else None,
            marker=source.marker,
        )
        previous = ledger.items(sid)
        entries = source.entries()
        if not entries and previous and not allow_empty:
            raise ImportSourceError(
                f"{source.location} lists no items, but its last import sent {len(previous)}; "
                "nothing was changed",
                "check the path and --glob; to remove every note it sent, add --allow-empty",
            )
        listed = {entry.key for entry in entries}
        changed = [e for e in entries if _changed(previous.get(e.key), e)]
        report.unchanged = len(entries) - len(changed)
        gone = [item for key, item in sorted(previous.items()) if key not in listed]
        limit = m.plan.consumer.max_job_bytes
        if dry_run:  # the same documents and the same decisions as the run, nothing written
            for start in range(0, len(changed), BATCH):
                for doc in documents(source, changed[start : start + BATCH], limit):
                    if why := skip_reason(doc, user_id, limit):
                        report.skipped.append((doc.entry.title, why))
                    else:
                        nid = note_id(source.kind, sid, doc.entry.key)
                        report.sent.append(ImportedNote(doc.entry.key, doc.entry.title, nid))
            report.removed = [ImportedNote(i.key, i.key, i.note_id) for i in gone if i.note_id]
            return report
        writer = _Writer(m, ledger, sid, user_id, clock, on_progress, len(changed) + len(gone))
        try:
            for start in range(0, len(changed), BATCH):
                batch = changed[start : start + BATCH]
                writer.send(source.kind, list(documents(source, batch, limit)), previous, report)
            writer.remove(gone, report)
        finally:
            report.write_failures = writer.close()
        ledger.finish(sid, kind=source.kind, name=name, user_id=user_id, marker=source.marker)
        return report
    finally:
        ledger.close()


def documents(source: ImportSource, entries: Sequence[Entry], limit: int) -> Iterator[Document]:
    """The documents of ``entries``: those that cannot be read or are over ``limit`` bytes
    before reading (a file's text is never shorter in a job's body than on disk) are not
    read, so memory stays flat whatever a file's size."""
    readable = []
    for entry in entries:
        if entry.problem:
            yield Document(entry, None, 0, entry.problem)
        elif entry.size is not None and entry.size > limit:
            yield Document(entry, None, 0, _over(limit, entry.size))
        else:
            readable.append(entry)
    yield from source.read(readable)


def skip_reason(doc: Document, user_id: str, limit: int) -> str:
    """Why a document is not sent ("" when it is): the one decision of a run and a dry run."""
    if doc.skipped or doc.text is None:
        return doc.skipped or "not a note"
    body = Job(user_id, "x" * 40, doc.text, 0, 1).to_body()
    size = len(body.encode("utf-8", "surrogatepass"))
    return _over(limit, size) if size > limit else ""


def _over(limit: int, size: int) -> str:
    return f"larger than consumer.max_job_bytes ({size:,} bytes, the limit is {limit:,})"


def _changed(item: ImportedItem | None, entry: Entry) -> bool:
    return item is None or item.fingerprint != entry.fingerprint


class _Writer:
    """Writes notes the app's way (source row, then the router) and records them."""

    def __init__(
        self,
        m: Migration,
        ledger: ImportLedger,
        source: str,
        user_id: str,
        clock: Callable[[], float],
        on_progress: Progress | None,
        total: int,
    ) -> None:
        self.m = m
        self.ledger = ledger
        self.source = source
        self.user_id = user_id
        self.clock = clock
        self.router = m.router()
        self.advance = (lambda n: on_progress("import", total, n)) if on_progress else None
        self.max_bytes = m.plan.consumer.max_job_bytes

    def send(
        self,
        kind: str,
        documents: list[Document],
        previous: dict[str, ImportedItem],
        report: ImportReport,
    ) -> None:
        notes: list[tuple[Document, Note]] = []
        seen: list[ImportedItem] = []
        gone: list[ImportedItem] = []
        for doc in documents:
            entry = doc.entry
            prior = previous.get(entry.key)
            why = skip_reason(doc, self.user_id, self.max_bytes)
            if entry.problem:  # unreadable now: reported, and what it was before is kept
                report.skipped.append((entry.title, why))
                continue
            if why or doc.text is None:
                report.skipped.append((entry.title, why))
                seen.append(ImportedItem(entry.key, None, entry.fingerprint, 0))
                if prior is not None and prior.note_id:
                    gone.append(prior)  # it was a note before: its note goes
                continue
            # Never older than what was sent before: the worker keeps the newer record, so an
            # edit stamped with an older time (a copied file, a rebased commit) would be lost.
            created = max(doc.created, prior.created + 1 if prior else 0)
            nid = note_id(kind, self.source, entry.key)
            notes.append((doc, Note(nid, self.user_id, doc.text, created, created)))
            seen.append(ImportedItem(entry.key, nid, entry.fingerprint, created))
        if notes:
            insert_notes(self.m.source, [note for _, note in notes])
            self.router.write_many([note for _, note in notes])
            for doc, note in notes:
                report.sent.append(ImportedNote(doc.entry.key, doc.entry.title, note.id))
            if self.advance:
                self.advance(len(notes))
        self._removals(gone, report)
        self.ledger.record(self.source, seen)
        if self.advance and len(documents) > len(notes):
            self.advance(len(documents) - len(notes))

    def remove(self, gone: list[ImportedItem], report: ImportReport) -> None:
        self._removals([item for item in gone if item.note_id], report)
        self.ledger.forget(self.source, [item.key for item in gone])

    def _removals(self, items: list[ImportedItem], report: ImportReport) -> None:
        """Remove notes: the app deletes the row, then writes the emptied note (which removes
        its records in every system the write mode names)."""
        if not items:
            return
        now = int(self.clock() * 1000)
        delete_notes(self.m.source, [item.note_id for item in items if item.note_id])
        emptied = [
            Note(
                item.note_id,
                self.user_id,
                "",
                max(now, item.created + 1),
                max(now, item.created + 1),
            )
            for item in items
            if item.note_id is not None
        ]
        for start in range(0, len(emptied), BATCH):
            self.router.write_many(emptied[start : start + BATCH])
        report.removed += [ImportedNote(i.key, i.key, i.note_id) for i in items if i.note_id]
        if self.advance:
            self.advance(len(emptied))

    def close(self) -> dict[str, int]:
        self.router.close()
        counters = self.router.counters
        return {
            side: counters[f"write_{side}_failed"]
            for side in ("old", "new")
            if counters[f"write_{side}_failed"]
        }


def text_of(data: bytes) -> str | None:
    """A file's text, or None for a binary file (a NUL byte near the start, or not UTF-8)."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
