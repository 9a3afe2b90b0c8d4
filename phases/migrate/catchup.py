"""Catching the old system up, before a rollback from phase 4 sends searches back to it.

In phase 4 writes go to the new system only, so the old index misses every note created,
edited or deleted since phase 4 began. A rollback from there first turns dual writes back on
(so the old system gets every write from now on), waits for the routers to see that (their
``traffic.state_refresh`` bound), then writes every note the source shows changed since
phase 4 began into the old system, the old way and in its layout, and removes from it every
note the source no longer holds. Only then do reads move.

The start of phase 4 is kept in the state (``notes.old_writes_stopped_at``, set when phase 4
switches writes to the new system); a state without it is searched in the journal, and
without either every note is written again. The bound is taken :data:`CLOCK_MARGIN` earlier,
since the app's machines stamp ``updated`` with their own clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from constellation.ledger.state import MigrationState
from constellation.migration.legacy import LegacySystem, Prunable, write_notes
from constellation.migration.source import Note
from constellation.wiring.migration import Migration
from phases.steps import Check

#: the state note phase 4 writes when the old system stops getting writes (epoch seconds)
OLD_WRITES_STOPPED: Final = "old_writes_stopped_at"
#: seconds taken off that time: app machines' clocks may be behind ours by this much
CLOCK_MARGIN = 300.0
#: notes per write into the old system
PAGE = 200
#: times a page's notes edited meanwhile are written again before they are left to the app
ROUNDS = 20

Progress = Callable[[str, int | None, int], None]


def old_writes_stopped(m: Migration, state: MigrationState) -> float | None:
    """When the old system stopped getting writes (epoch seconds), or None when unknown."""
    recorded = state.notes.get(OLD_WRITES_STOPPED)
    if isinstance(recorded, int | float):
        return float(recorded)
    for entry in reversed(m.state.journal(1000)):
        before, after = entry.changes.get("write_mode", (None, None))
        if after == "new" and before != "new":
            return entry.at
    return None


def needs_catch_up(state: MigrationState) -> bool:
    """Whether the old system has missed writes (write mode ``new``: phase 4)."""
    return state.write_mode == "new"


@dataclass
class CatchUp:
    """The step: write every note changed since ``since`` into the old system and remove the
    notes deleted from the source; ``wait`` seconds first, for the routers to write dual."""

    m: Migration
    since: float | None
    wait: float
    on_progress: Progress | None = None
    written: int = 0
    removed: int = 0
    #: notes still being edited after :data:`ROUNDS` writes (the app's dual writes carry them)
    unsettled: int = 0
    #: why removals could not be looked for (an adapter without note_keys/delete_many)
    skipped: str = ""
    applied: bool = field(default=False, repr=False)

    resource = "old system"

    @property
    def since_text(self) -> str:
        if self.since is None:
            return "ever (phase 4's start is not recorded)"
        return datetime.fromtimestamp(self.since, tz=UTC).isoformat(timespec="seconds")

    def describe(self) -> str:
        return (
            f"write every note changed since {self.since_text} into the old system, the old "
            "way, and remove the notes deleted from the source"
        )

    def check(self) -> Check:
        return Check("update", self.describe())

    def apply(self) -> str:
        self.m.sleep(self.wait)  # every router reads the new write mode within this bound
        legacy = self.m.legacy_writer
        since_ms = None if self.since is None else int((self.since - CLOCK_MARGIN) * 1000)
        for page in _pages(self.m.source.changed_since(since_ms)):
            self.unsettled += _settle(self.m, legacy, page)
            self.written += len(page)
            self._progress(len(page))
        if isinstance(legacy, Prunable):
            # Collected first, deleted after: deleting during the scan would shift its pages.
            gone = list(_gone(self.m, legacy.note_keys()))
            legacy.delete_many(gone)
            self.removed = len(gone)
        else:
            self.skipped = "the old-system adapter has no note_keys() and delete_many()"
        self.applied = True
        removed = self.skipped or f"{self.removed:,} removed"
        still = f", {self.unsettled:,} still being edited" if self.unsettled else ""
        return f"{self.written:,} notes changed since {self.since_text} written{still}, {removed}"

    def _progress(self, n: int) -> None:
        if self.on_progress:
            self.on_progress("catch up the old system", None, n)

    def undo(self) -> None:
        pass  # what was written matches the source: harmless, and the next try rewrites it

    def summary(self) -> dict[str, Any]:
        """What the rollback report keeps of the catch-up."""
        return {
            "since": self.since_text,
            "written": self.written,
            "removed": self.removed,
            "unsettled": self.unsettled,
            "skipped": self.skipped or None,
        }


def _pages(notes: Iterator[Note]) -> Iterator[list[Note]]:
    page: list[Note] = []
    for note in notes:
        page.append(note)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _settle(m: Migration, legacy: LegacySystem, page: list[Note]) -> int:
    """Write ``page`` into the old system until the source shows none of it edited meanwhile;
    the notes still changing after :data:`ROUNDS` writes (0 almost always).

    The page was read before it was embedded, which takes seconds; the app's dual writes of
    edits made meanwhile may already be in the old system, and this write would put the older
    text back over them. So the source is read again after each write: a note it shows
    unchanged since it was read was edited, if at all, after this write, and that edit's own
    dual write comes later still; a note it shows changed is written again with its newest
    text. (Old-system writes carry no time in an app's layout, so the order of the writes is
    what keeps the newer text.)
    """
    pending = page
    for _ in range(ROUNDS):
        write_notes(legacy, pending)
        now = m.source.current([note.id for note in pending])
        pending = [
            now[note.id]
            for note in pending
            if note.id in now
            and (now[note.id].content, now[note.id].edited)
            != (
                note.content,
                note.edited,
            )
        ]
        if not pending:
            return 0
    return len(pending)


def _gone(m: Migration, keys: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """The keys whose note the source no longer holds, checked a page at a time."""
    page: list[tuple[str, str]] = []

    def check() -> Iterator[tuple[str, str]]:
        present = m.source.existing([note for _, note in page])
        yield from (key for key in page if key[1] not in present)

    for key in keys:
        page.append(key)
        if len(page) == PAGE:
            yield from check()
            page = []
    if page:
        yield from check()
