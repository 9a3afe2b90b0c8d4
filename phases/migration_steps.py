"""The side effects of the migration as step objects (see :mod:`phases.steps`).

Each phase command is a list of these; ``--dry-run`` describes the same list.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constellation.errors import ConstellationError, StateError
from constellation.index.port import StoredRecord
from constellation.queues.port import Queue
from constellation.worker import RunSummary, WorkerStatus
from phases import backfill
from phases.source import NotesSource
from phases.state import StateStore
from phases.steps import Check


@dataclass
class ChangeState:
    """Set fields of the migration state (journaled); undo restores the previous values."""

    state: StateStore
    command: str
    reason: str
    changes: dict[str, Any]
    _before: dict[str, Any] = field(default_factory=dict)

    resource = "migration state"

    def _describe_changes(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.changes.items() if k != "notes")

    def describe(self) -> str:
        return f"set {self._describe_changes()}"

    def check(self) -> Check:
        current = self.state.read()
        if all(getattr(current, k) == v for k, v in self.changes.items()):
            return Check("unchanged", self._describe_changes())
        return Check("update", self.describe())

    def apply(self) -> str:
        current = self.state.read()
        self._before = {k: getattr(current, k) for k in self.changes}
        self.state.change(self.command, self.reason, **self.changes)
        return self._describe_changes()

    def undo(self) -> None:
        if self._before:
            self.state.change(self.command, "undone: a later step failed", **self._before)


@dataclass
class Backfill:
    """Send every existing note through the queue, resuming after the saved cursor."""

    source: NotesSource
    queue: Queue
    state: StateStore
    versions: Sequence[int]
    on_progress: Callable[[str, int | None, int], None] | None = None
    report: backfill.BackfillReport | None = None

    resource = "backfill"

    def describe(self) -> str:
        left, after = backfill.remaining(self.source, self.state, self.versions)
        where = f" (resuming after note {after})" if after else ""
        return f"enqueue {left:,} notes from the source{where}"

    def check(self) -> Check:
        left, after = backfill.remaining(self.source, self.state, self.versions)
        if left == 0:
            return Check("unchanged", "every note was already sent")
        where = f", resuming after note {after}" if after else ""
        return Check("update", f"{left:,} notes to send{where}")

    def apply(self) -> str:
        left, _ = backfill.remaining(self.source, self.state, self.versions)
        progress = self.on_progress

        def advance(n: int) -> None:
            if progress:
                progress("backfill", left, n)

        self.report = backfill.backfill(
            self.source, self.queue, self.state, self.versions, on_progress=advance
        )
        return f"{self.report.sent:,} jobs sent" + (
            f", {self.report.rejected} rejected" if self.report.rejected else ""
        )

    def undo(self) -> None:
        pass  # sent jobs are harmless: the worker is idempotent


@dataclass
class Drain:
    """Wait until the queue is empty: run the worker in-process, or wait for running workers."""

    run_worker: Callable[[], RunSummary] | None
    queue: Queue
    poll: float = 2.0
    timeout: float | None = None
    on_status: Callable[[WorkerStatus], None] | None = None
    summary: RunSummary | None = None
    sleep: Callable[[float], None] = time.sleep

    resource = "queue"

    def describe(self) -> str:
        how = "an in-process worker" if self.run_worker else "the running workers"
        return f"wait until {how} drain the queue"

    def check(self) -> Check:
        return Check("update", self.describe())

    def apply(self) -> str:
        if self.run_worker is not None:
            self.summary = self.run_worker()
            return f"drained by an in-process worker ({self.summary.reason})"
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while (depth := self.queue.depth()).total:
            if deadline is not None and time.monotonic() > deadline:
                raise StateError(f"the queue did not drain: {depth.total} messages left")
            self.sleep(self.poll)
        return "drained by the running workers"

    def undo(self) -> None:
        pass


@dataclass
class ArchiveLegacy:
    """Write every record of the old index (id, vector, metadata) to a JSON Lines file."""

    legacy: Any
    path: Path
    on_progress: Callable[[str, int | None, int], None] | None = None
    written: int = 0

    @property
    def resource(self) -> str:
        return f"archive {self.path.name}"

    def describe(self) -> str:
        return f"archive the legacy index to {self.path}"

    def check(self) -> Check:
        if not hasattr(self.legacy, "scan"):
            raise ConstellationError(
                "the legacy adapter cannot export its records (it has no scan())",
                "archive the old index with its own tools, then run phase 4 with --force",
            )
        if self.path.exists() and archive_count(self.path) == self.legacy.count():
            return Check("unchanged", f"already archived ({self.legacy.count():,} records)")
        return Check("create", self.describe())

    def apply(self) -> str:
        total = self.legacy.count()
        progress = self.on_progress

        def advance(n: int) -> None:
            if progress:
                progress("archive", total, n)

        self.written = write_archive(self.legacy.scan(500), self.path, advance)
        return f"{self.written:,} records written"

    def undo(self) -> None:
        self.path.unlink(missing_ok=True)


def write_archive(
    records: Iterable[StoredRecord], path: Path, advance: Callable[[int], None] | None = None
) -> int:
    """Records (id, vector, metadata) as gzipped JSON Lines; returns how many were written.

    Written beside the target and renamed at the end: only a complete archive has its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    written = 0
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        for record in records:
            line = {
                "id": record.id,
                "vector": list(record.vector or []),
                "metadata": dict(record.metadata),
            }
            out.write(json.dumps(line) + "\n")
            written += 1
            if advance and written % 100 == 0:
                advance(100)
    partial.replace(path)
    return written


def archive_count(path: Path) -> int:
    """Records in an archive file (read back, to verify it)."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return sum(1 for _ in lines)
