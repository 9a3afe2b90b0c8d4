"""Backfill: every existing note from the source, through the queue, to the new index.

Resumable: after each batch is sent, the id of its last note is saved as a cursor in the
migration state, so an interrupted backfill continues after it. A crash between a send and
saving the cursor re-sends at most that one batch; the worker's idempotency (one record per
note and version, unchanged content skipped) makes the duplicates harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from constellation.ledger.state import StateStore
from constellation.migration.source import Note, NotesSource, SkippedNote
from constellation.producer import SEND_BATCH, send_jobs, validate
from constellation.queues.port import Queue
from phases.steps import Check


@dataclass(frozen=True)
class BackfillReport:
    sent: int
    rejected: int
    resumed_after: str | None
    total: int
    #: source rows that are not usable notes (no user, a BLOB body, ...), not sent
    skipped: tuple[SkippedNote, ...] = ()


def cursor_name(versions: Sequence[int]) -> str:
    return "backfill:" + ",".join(str(v) for v in versions)


def remaining(
    source: NotesSource, state: StateStore, versions: Sequence[int]
) -> tuple[int, str | None]:
    """(notes left to send, the id the backfill would resume after)."""
    after = state.cursor(cursor_name(versions))
    if after is None:
        return source.count(), None
    left = sum(1 for _ in source.iter_notes(after=after))
    return left, after


def backfill(
    source: NotesSource,
    queue: Queue,
    state: StateStore,
    versions: Sequence[int],
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = SEND_BATCH,
    max_bytes: int | None = None,
) -> BackfillReport:
    """Send one job per note and version, resuming after the saved cursor."""
    name = cursor_name(versions)
    after = state.cursor(name)
    total = sent = rejected = 0
    batch: list[Note] = []

    def flush() -> None:
        nonlocal sent, rejected
        jobs = [note.job(v) for note in batch for v in versions]
        report = send_jobs(queue, validate(jobs, versions, max_bytes), batch_size=batch_size)
        sent += report.sent
        rejected += len(report.rejected)
        state.set_cursor(name, batch[-1].id)
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for note in source.iter_notes(after=after):
        total += 1
        batch.append(note)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return BackfillReport(
        sent=sent,
        rejected=rejected,
        resumed_after=after,
        total=total,
        skipped=tuple(source.skipped.values()),
    )


def skipped_summary(skipped: Sequence[SkippedNote], shown: int = 3) -> str:
    """The first few skipped rows in words, for a step's detail."""
    text = "; ".join(str(s) for s in skipped[:shown])
    return text + (f"; and {len(skipped) - shown} more" if len(skipped) > shown else "")


def reset(state: StateStore, versions: Sequence[int]) -> None:
    """Forget the cursor: the next backfill starts from the first note (after a full rollback)."""
    state.set_cursor(cursor_name(versions), None)


@dataclass
class Backfill:
    """The step: send every existing note through the queue, resuming after the saved cursor."""

    source: NotesSource
    queue: Queue
    state: StateStore
    versions: Sequence[int]
    on_progress: Callable[[str, int | None, int], None] | None = None
    #: the worker's limit (``consumer.max_job_bytes``): a note over it is rejected, not sent
    max_bytes: int | None = None
    report: BackfillReport | None = None

    resource = "backfill"

    def describe(self) -> str:
        left, after = remaining(self.source, self.state, self.versions)
        where = f" (resuming after note {after})" if after else ""
        return f"enqueue {left:,} notes from the source{where}"

    def check(self) -> Check:
        left, after = remaining(self.source, self.state, self.versions)
        if left == 0:
            return Check("unchanged", "every note was already sent")
        where = f", resuming after note {after}" if after else ""
        return Check("update", f"{left:,} notes to send{where}")

    def apply(self) -> str:
        left, _ = remaining(self.source, self.state, self.versions)
        progress = self.on_progress

        def advance(n: int) -> None:
            if progress:
                progress("backfill", left, n)

        self.report = backfill(
            self.source,
            self.queue,
            self.state,
            self.versions,
            on_progress=advance,
            max_bytes=self.max_bytes,
        )
        skipped = self.report.skipped
        return (
            f"{self.report.sent:,} jobs sent"
            + (f", {self.report.rejected} rejected" if self.report.rejected else "")
            + (
                f", {len(skipped)} source row(s) skipped: {skipped_summary(skipped)}"
                if skipped
                else ""
            )
        )

    def undo(self) -> None:
        pass  # sent jobs are harmless: the worker is idempotent


@dataclass
class ResetBackfill:
    """The step: forget the backfill cursor so that phase 1 re-sends every note next time."""

    state: StateStore
    resource: str = "backfill cursor"

    def describe(self) -> str:
        return "forget the backfill cursor (phase 1 will re-send every note)"

    def check(self) -> Check:
        versions = self.state.read().write_versions
        if self.state.cursor(cursor_name(versions)) is None:
            return Check("unchanged", "no cursor")
        return Check("update", self.describe())

    def apply(self) -> str:
        reset(self.state, self.state.read().write_versions)
        return "forgotten"

    def undo(self) -> None:
        pass
