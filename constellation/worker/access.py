"""The worker's reads and writes of the index, for all batches in flight together.

An index split into partitions by user (``constellation.index.partitioned``) costs one call
per partition a read or a write touches, and Chroma's fixed cost per call (a transaction, a
sync to disk for a write) dwarfs its cost per record. So the batches in flight do not each
call the index: they hand their reads and their writes to :class:`IndexAccess`, whose two
threads serve every request pending at that moment in one call per index (see
:mod:`constellation.coalesce`). The write thread also makes "read what is stored now, decide,
write" one step within the process: a newer edit held by one batch is never overwritten by an
older one another batch holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from constellation import records
from constellation.coalesce import Coalescer
from constellation.index.port import StoredRecord, VectorIndex, VectorRecord
from constellation.jobs import Job
from constellation.worker.events import EMPTY, SKIPPED
from constellation.worker.outcomes import Pending

#: each job's outcome once written, how many of its records were upserted, and the sizes of the
#: index upserts it led (a call shared by several requests counts with the first of them)
Written = tuple[list[tuple[Pending, str]], int, tuple[int, ...]]


@dataclass(frozen=True)
class _Read:
    index: VectorIndex
    ids: list[str]


@dataclass
class _Write:
    index: VectorIndex
    #: (record, job, its outcome once stored)
    writes: list[tuple[VectorRecord, Pending, str]]
    #: emptied notes: their record goes, unless a newer one is stored
    empties: list[Pending] = field(default_factory=list)


class IndexAccess:
    """Coalesced reads (metadata only) and newest-wins writes; thread-safe."""

    def __init__(self, *, limit: int = 2000) -> None:
        self._reads: Coalescer[_Read, dict[str, StoredRecord]] = Coalescer(
            self._serve_reads, name="index-reads", limit=limit, size=lambda r: len(r.ids)
        )
        self._writes: Coalescer[_Write, Written] = Coalescer(
            self._serve_writes,
            name="index-writes",
            limit=limit,
            size=lambda w: len(w.writes) + len(w.empties),
        )

    def read(self, index: VectorIndex, ids: Sequence[str]) -> dict[str, StoredRecord]:
        """The stored records among ``ids`` (metadata, no vectors)."""
        return self._reads(_Read(index, list(ids))) if ids else {}

    def write(
        self,
        index: VectorIndex,
        writes: list[tuple[VectorRecord, Pending, str]],
        empties: list[Pending],
    ) -> Written:
        """Store ``writes`` and remove ``empties``' records, each unless a newer one is stored."""
        if not writes and not empties:
            return [], 0, ()
        return self._writes(_Write(index, writes, empties))

    # served on the coalescers' threads ----------------------------------------------------------
    @staticmethod
    def _serve_reads(requests: Sequence[_Read]) -> list[dict[str, StoredRecord]]:
        found: dict[int, dict[str, StoredRecord]] = {}
        for index, group in _by_index(requests):
            ids = list(dict.fromkeys(i for request in group for i in request.ids))
            found[id(index)] = index.get(ids)
        return [
            {i: found[id(r.index)][i] for i in r.ids if i in found[id(r.index)]} for r in requests
        ]

    @staticmethod
    def _serve_writes(requests: Sequence[_Write]) -> list[Written]:
        results: dict[int, Written] = {}
        for index, group in _by_index(requests):
            ids = [r.id for w in group for r, _, _ in w.writes] + [
                item.id for w in group for item in w.empties
            ]
            current = index.get(list(dict.fromkeys(ids)))
            #: the last decision per record id: its new record, or None to delete it
            final: dict[str, VectorRecord | None] = {}
            for request in group:
                done: list[tuple[Pending, str]] = []
                upserted = 0
                for record, item, kind in request.writes:
                    stored = current.get(record.id)
                    if newer(stored, item.job) or _same(stored, record, item.job):
                        # newer, or this very edit stored meanwhile by another batch in
                        # flight (a duplicate delivery): nothing to write
                        done.append((item, SKIPPED))
                        continue
                    final[record.id] = record
                    current[record.id] = StoredRecord(record.id, record.metadata)
                    done.append((item, kind))
                    upserted += 1
                for item in request.empties:
                    if newer(current.get(item.id), item.job):
                        done.append((item, SKIPPED))
                        continue
                    if item.id in current:
                        final[item.id] = None
                        current.pop(item.id)
                    done.append((item, EMPTY))
                results[id(request)] = (done, upserted, ())
            upserts = [record for record in final.values() if record is not None]
            if upserts:
                index.upsert(upserts)
                first = id(group[0])
                done, upserted, _ = results[first]
                results[first] = (done, upserted, (len(upserts),))
            deletes = [id_ for id_, record in final.items() if record is None]
            if deletes:
                index.delete(deletes)
        return [results[id(request)] for request in requests]


def newer(stored: StoredRecord | None, job: Job) -> bool:
    """Whether the stored record is newer than the job's edit, which therefore must not
    replace it (a forced job, from ``requeue --force``, replaces it all the same)."""
    return (
        not job.force and stored is not None and records.created_of(stored.metadata) > job.created
    )


def _same(stored: StoredRecord | None, record: VectorRecord, job: Job) -> bool:
    """Whether ``stored`` already is ``record``: the same edit of the same text by the same
    model (a forced job is written all the same: it may be repairing the stored vector)."""
    if job.force or stored is None:
        return False
    keys = (records.SOURCE, records.HASH, records.MODEL, records.CREATED)
    return all(stored.metadata.get(k) == record.metadata.get(k) for k in keys)


_R = TypeVar("_R", _Read, _Write)


def _by_index(requests: Sequence[_R]) -> list[tuple[VectorIndex, list[_R]]]:
    groups: dict[int, tuple[VectorIndex, list[_R]]] = {}
    for request in requests:
        groups.setdefault(id(request.index), (request.index, []))[1].append(request)
    return list(groups.values())
