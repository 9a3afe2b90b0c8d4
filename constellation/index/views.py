"""One layout of one partitioned index: its records, each routed to its user's partition.

:class:`LayoutView` reads no manifest: it is what a
:class:`~constellation.index.partitioned.PartitionedIndex` writes through (one view per layout
it writes), and what ``index migrate`` copies into.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from constellation.errors import VectorIndexError
from constellation.index.layout import INLINE, partition_of
from constellation.index.port import StoredRecord, VectorIndex, VectorRecord

_USER = "userId"

#: Reads of several partitions run at once: Chroma lets go of the GIL for much of a get and
#: waits on its own threads for part of it, so even on 2 cores four reads at once took 0.47 ms
#: a get against 0.9 one by one, and two 0.75 (measured, chromadb 1.5.9). Its writes take a
#: lock of their own: upserts and deletes stay one partition after another.
_READERS = ThreadPoolExecutor(4, thread_name_prefix="index-read")


class Partitions(Protocol):
    """What a view needs from its store: the partitions, and the user inside a record id."""

    def partition(self, name: str, partitions: int, number: int) -> VectorIndex: ...

    def partitions_of(self, name: str, partitions: int) -> list[VectorIndex]: ...

    def user_of_id(self, record_id: str) -> str | None: ...


class LayoutView:
    """The records of one layout (``partitions``) of the index ``name``."""

    def __init__(self, store: Partitions, name: str, partitions: int) -> None:
        self.store = store
        self.name = name
        self.partitions = partitions

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        groups: dict[int, list[VectorRecord]] = {}
        for record in records:
            groups.setdefault(self._number(record), []).append(record)
        for number, group in sorted(groups.items()):
            self.store.partition(self.name, self.partitions, number).upsert(group)

    def delete(self, ids: Sequence[str]) -> None:
        for index, group in self._by_partition(ids):
            index.delete(group)

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        groups = self._by_partition(ids)

        def read(group: tuple[VectorIndex, list[str]]) -> dict[str, StoredRecord]:
            return group[0].get(group[1], include_vectors=include_vectors)

        # one partition is read here: no thread to hand it to
        parts = _READERS.map(read, groups) if len(groups) > 1 else map(read, groups)
        found: dict[str, StoredRecord] = {}
        for part in parts:
            found.update(part)
        return {id_: found[id_] for id_ in ids if id_ in found}

    def partition_for(self, user_id: str) -> VectorIndex:
        return self.store.partition(self.name, self.partitions, self._of(user_id))

    def all(self) -> list[VectorIndex]:
        return self.store.partitions_of(self.name, self.partitions)

    def _of(self, user_id: str) -> int:
        return 0 if self.partitions == INLINE else partition_of(user_id, self.partitions)

    def _number(self, record: VectorRecord) -> int:
        if self.partitions in (INLINE, 1):
            return 0
        user = record.metadata.get(_USER)
        if not isinstance(user, str):
            raise VectorIndexError(
                f"record {record.id} has no {_USER}: a partitioned index stores records by user"
            )
        return partition_of(user, self.partitions)

    def _by_partition(self, ids: Sequence[str]) -> list[tuple[VectorIndex, list[str]]]:
        """``ids`` grouped by partition; an id whose user cannot be read goes to every one."""
        if not ids:
            return []
        if self.partitions in (INLINE, 1):
            return [(self.store.partition(self.name, self.partitions, 0), list(ids))]
        groups: dict[int, list[str]] = {}
        unknown: list[str] = []
        for id_ in ids:
            user = self.store.user_of_id(id_)
            if user is None:
                unknown.append(id_)
            else:
                groups.setdefault(partition_of(user, self.partitions), []).append(id_)
        if unknown:
            for number in range(self.partitions):
                groups.setdefault(number, []).extend(unknown)
        return [
            (self.store.partition(self.name, self.partitions, number), group)
            for number, group in sorted(groups.items())
        ]
