"""The worker's reads and writes of the index, for all batches in flight together.

An index split into partitions by user (``constellation.index.partitioned``) costs one call
per partition a read or a write touches, and Chroma's fixed cost per call (a transaction, a
sync to disk for a write) dwarfs its cost per record. So the batches in flight do not each
call the index:

* reads: each batch reads what is stored for its jobs once, before the model (the unchanged
  check needs it); the reads pending at one moment are served in one call per partition
  (:mod:`constellation.coalesce`);
* writes: each batch hands its records to :class:`~.write_behind.WriteBehind`, which stores
  the records of many batches in one call per partition, and completes the batch once they
  are stored.

Newest wins without reading the index again before a write: the batch's own read (its
:class:`Snapshot`) shows what was stored when it began, and this process's own writes since
then are in the *overlay*, the decision this process made last on each record id, kept until
no batch that read before it was stored is still deciding. A job's edit is compared with the
newer of the two. Decisions are made one at a time under a lock, in the order they hand over,
so two batches holding edits of one note can never let the older overwrite the newer. Across
worker processes Chroma offers no conditional write: a FIFO queue (``queue.fifo``) delivers one
note's edits one at a time and in order.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from constellation import records
from constellation.coalesce import Coalescer
from constellation.index.port import StoredRecord, VectorIndex, VectorRecord
from constellation.jobs import Job
from constellation.worker.events import EMPTY, SKIPPED
from constellation.worker.outcomes import Pending
from constellation.worker.write_behind import WriteBehind, WriteRequest, Written

__all__ = ["IndexAccess", "Snapshot", "Written", "newer"]


@dataclass(frozen=True)
class _Read:
    index: VectorIndex
    ids: list[str]


@dataclass(frozen=True)
class Snapshot:
    """What one batch read: the stored records among its ids, and when it began to read."""

    records: dict[str, StoredRecord]
    #: the write-behind's tick before the read began: generations stored later may be missing
    since: int

    def get(self, record_id: str) -> StoredRecord | None:
        return self.records.get(record_id)


@dataclass(frozen=True)
class _Decision:
    """This process's last decision on one record: its metadata (None: deleted), the edit time
    it was decided for, and the request that stores it."""

    stored: StoredRecord | None
    created: int
    request: WriteRequest


class IndexAccess:
    """Coalesced reads (metadata only) and newest-wins, write-behind writes; thread-safe."""

    def __init__(
        self,
        *,
        limit: int = 2000,
        max_write_records: int = 4000,
        max_write_delay: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reads: Coalescer[_Read, dict[str, StoredRecord]] = Coalescer(
            self._serve_reads, name="index-reads", limit=limit, size=lambda r: len(r.ids)
        )
        self.behind = WriteBehind(
            max_records=max_write_records,
            max_delay=max_write_delay,
            clock=clock,
            on_stored=self._prune,
        )
        self._lock = threading.Lock()
        #: (id of the index, record id) → this process's last decision on it
        self._overlay: dict[tuple[int, str], _Decision] = {}
        #: the ``since`` of every snapshot still deciding, counted
        self._open: Counter[int] = Counter()

    def read(self, index: VectorIndex, ids: Sequence[str]) -> Snapshot:
        """The stored records among ``ids`` (metadata, no vectors). Hand the snapshot back with
        :meth:`write` or :meth:`release` once the batch has decided."""
        with self._lock:
            since = self.behind.tick()
            self._open[since] += 1
        try:
            found = self._reads(_Read(index, list(ids))) if ids else {}
        except BaseException:
            self.release(Snapshot({}, since))
            raise
        return Snapshot(found, since)

    def release(self, snapshot: Snapshot) -> None:
        """The batch that read ``snapshot`` decides no more (idempotent per read: call once)."""
        with self._lock:
            self._open[snapshot.since] -= 1
            if self._open[snapshot.since] <= 0:
                del self._open[snapshot.since]

    def write(
        self,
        index: VectorIndex,
        snapshot: Snapshot,
        writes: list[tuple[VectorRecord, Pending, str]],
        empties: list[Pending],
    ) -> Future[Written]:
        """Store ``writes`` and remove ``empties``' records, each unless a newer one is stored
        or decided; the future completes once what was decided is stored."""
        if not writes and not empties:
            done: Future[Written] = Future()
            done.set_result(([], 0, ()))
            return done
        self.behind.wait_for_room()
        with self._lock:
            request = WriteRequest(index, {}, [], 0)
            for record, item, kind in writes:
                current = self._current(index, snapshot, record.id, request)
                if newer(current, item.job) or _same(current, record, item.job):
                    # newer, or this very edit stored or decided meanwhile by another batch
                    # in flight (a duplicate delivery): nothing to write
                    request.done.append((item, SKIPPED))
                    continue
                request.records[record.id] = record
                self._decide(
                    index, record.id, StoredRecord(record.id, record.metadata), item, request
                )
                request.done.append((item, kind))
                request.upserted += 1
            for item in empties:
                current = self._current(index, snapshot, item.id, request)
                if newer(current, item.job):
                    request.done.append((item, SKIPPED))
                    continue
                if current is not None:
                    request.records[item.id] = None
                    self._decide(index, item.id, None, item, request)
                request.done.append((item, EMPTY))
            self.behind.add(request)
        return request.future

    def backlog(self, busy: bool) -> None:
        """Whether the worker has a backlog (writes then gather into larger calls)."""
        self.behind.backlog(busy)

    def flush(self) -> None:
        """Store what is gathered now."""
        self.behind.flush()

    # decisions, under the lock ----------------------------------------------------------------
    def _current(
        self, index: VectorIndex, snapshot: Snapshot, record_id: str, request: WriteRequest
    ) -> StoredRecord | None:
        """The newer of what the batch read and what this process decided last; a decision not
        stored yet becomes something the request waits for."""
        read = snapshot.get(record_id)
        decided = self._overlay.get((id(index), record_id))
        if decided is None or (
            read is not None and records.created_of(read.metadata) > decided.created
        ):
            return read
        if decided.request.stored_at is None:
            request.after.add(decided.request)
        return decided.stored

    def _decide(
        self,
        index: VectorIndex,
        record_id: str,
        stored: StoredRecord | None,
        item: Pending,
        request: WriteRequest,
    ) -> None:
        self._overlay[(id(index), record_id)] = _Decision(stored, item.job.created, request)

    def _prune(self) -> None:
        """After a generation is stored: forget the decisions every deciding batch can read,
        and those that failed to store (the index decides again)."""
        with self._lock:
            oldest = min(self._open, default=None)
            for key in [
                key
                for key, decided in self._overlay.items()
                if decided.request.error is not None
                or (
                    decided.request.stored_at is not None
                    and (oldest is None or decided.request.stored_at <= oldest)
                )
            ]:
                del self._overlay[key]

    # served on the read coalescer's thread ------------------------------------------------------
    @staticmethod
    def _serve_reads(requests: Sequence[_Read]) -> list[dict[str, StoredRecord]]:
        found: dict[int, dict[str, StoredRecord]] = {}
        for index, group in _by_index(requests):
            ids = list(dict.fromkeys(i for request in group for i in request.ids))
            found[id(index)] = index.get(ids)
        return [
            {i: found[id(r.index)][i] for i in r.ids if i in found[id(r.index)]} for r in requests
        ]


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


_R = TypeVar("_R", bound=_Read)


def _by_index(requests: Sequence[_R]) -> list[tuple[VectorIndex, list[_R]]]:
    groups: dict[int, tuple[VectorIndex, list[_R]]] = {}
    for request in requests:
        groups.setdefault(id(request.index), (request.index, []))[1].append(request)
    return list(groups.values())
