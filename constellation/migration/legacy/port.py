"""The old-system port: what the router, the phases and the rollbacks ask of the app's old index.

Two verbs are required, ``write(note)`` and ``search(text, user_id, top_k)``; the rest are
optional and named here so that an operator's own adapter (``legacy: {adapter:
"mypackage.search:make_legacy"}``, a callable taking ``(plan, services)``) knows what each
enables: ``count``/``scan`` phase 4's archive, ``get`` ``compare``, ``write_many`` faster
catch-ups, ``note_keys``/``delete_many`` the removal of notes deleted while the old system
was not written (a rollback from phase 4), ``check_layout`` a check in ``verify``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from constellation.index.port import StoredRecord
from constellation.migration.source import Note
from constellation.query import SearchResult

#: a note as the old system knows it: (user id, note id)
NoteKey = tuple[str, str]


@runtime_checkable
class LegacySystem(Protocol):
    def write(self, note: Note) -> None:
        """Store (or replace) one note the old way."""
        ...

    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's ``top_k`` notes closest to ``text``."""
        ...


@runtime_checkable
class FullLegacySystem(LegacySystem, Protocol):
    """An old system that Constellation can archive, inspect, catch up and check."""

    model: str

    def write_many(self, notes: Sequence[Note]) -> None:
        """Store (or replace) several notes the old way; emptied notes are removed."""
        ...

    def delete_many(self, keys: Sequence[NoteKey]) -> None:
        """Remove these notes' records (missing ones are ignored)."""
        ...

    def count(self) -> int:
        """Records in the old index (all of them, whatever their layout)."""
        ...

    def scan(self, batch_size: int = 500) -> Iterator[StoredRecord]:
        """Every record with its vector, in pages."""
        ...

    def get(self, user_id: str, note_id: str) -> StoredRecord | None:
        """One note's record with its vector, or None."""
        ...

    def note_keys(self, batch_size: int = 500) -> Iterator[NoteKey]:
        """(user id, note id) of every record that fits the layout; others are skipped."""
        ...

    def check_layout(self, sample: int = 20) -> LayoutCheck:
        """Whether a sample of the records fits the plan's layout."""
        ...


@dataclass(frozen=True)
class LayoutCheck:
    """``verify``'s look at the old index: does a sample of its records fit the layout?"""

    sampled: int
    #: the layout checked against, in words
    layout: str = ""
    #: one line per problem, naming the record and the missing key
    problems: tuple[str, ...] = ()
    #: why nothing could be sampled (no collection yet), when ``sampled`` is 0
    note: str = ""

    @property
    def fits(self) -> bool:
        return not self.problems
