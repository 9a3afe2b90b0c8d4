"""The old-system port: what the router, the phases and the rollbacks ask of the app's old index.

Two verbs are required, ``write(note)`` and ``search(text, user_id, top_k)``
(:class:`LegacySystem`); the rest are optional, one small protocol each, so that an operator's
own adapter (``legacy: {adapter: "mypackage.search:make_legacy"}``, a callable taking ``(plan,
services)``) knows what each enables: ``count``/``scan`` phase 4's archive
(:class:`Archivable`), ``get`` with ``model`` ``compare`` and ``doctor`` (:class:`FetchesNotes`),
``write_many`` faster catch-ups (:class:`WritesMany`), ``note_keys``/``delete_many`` the removal
of notes deleted while the old system was not written, a rollback from phase 4
(:class:`Prunable`), ``check_layout`` a check in ``verify`` (:class:`ChecksLayout`), ``close``
its connections released (:class:`Closable`).
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
    """The two verbs every old system has: what the router writes and searches."""

    def write(self, note: Note) -> None:
        """Store (or replace) one note the old way."""
        ...

    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's ``top_k`` notes closest to ``text``."""
        ...


# The optional verbs, one small protocol each: a caller asks ``isinstance(legacy, Archivable)``
# and the type checker then knows the verbs it may call.


@runtime_checkable
class WritesMany(Protocol):
    def write_many(self, notes: Sequence[Note]) -> None:
        """Store (or replace) several notes the old way; emptied notes are removed."""
        ...


@runtime_checkable
class Archivable(Protocol):
    def count(self) -> int:
        """Records in the old index (all of them, whatever their layout)."""
        ...

    def scan(self, batch_size: int = 500) -> Iterator[StoredRecord]:
        """Every record with its vector, in pages."""
        ...


@runtime_checkable
class FetchesNotes(Protocol):
    #: the model that embedded the old system's vectors
    model: str

    def get(self, user_id: str, note_id: str) -> StoredRecord | None:
        """One note's record with its vector, or None."""
        ...


@runtime_checkable
class Prunable(Protocol):
    def note_keys(self, batch_size: int = 500) -> Iterator[NoteKey]:
        """(user id, note id) of every record that fits the layout; others are skipped."""
        ...

    def delete_many(self, keys: Sequence[NoteKey]) -> None:
        """Remove these notes' records (missing ones are ignored)."""
        ...


@runtime_checkable
class ChecksLayout(Protocol):
    def check_layout(self, sample: int = 20) -> LayoutCheck:
        """Whether a sample of the records fits the plan's layout."""
        ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None:
        """Release the old system's connections."""
        ...


@runtime_checkable
class FullLegacySystem(
    LegacySystem, WritesMany, Archivable, FetchesNotes, Prunable, ChecksLayout, Protocol
):
    """An old system that Constellation can archive, inspect, catch up and check."""


def write_notes(legacy: LegacySystem, notes: Sequence[Note]) -> None:
    """Store several notes: in one call where the adapter can (an importer's batch, a
    catch-up's page: the old system embeds them in one model call), else one by one."""
    if isinstance(legacy, WritesMany):
        legacy.write_many(notes)
    else:
        for note in notes:
            legacy.write(note)


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
