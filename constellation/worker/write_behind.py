"""Index writes gathered across batches and stored in a few large calls (write-behind).

An index split into partitions pays a fixed cost per call and partition (a transaction, a sync
to disk, on the embedded client Python's GIL held throughout), and a batch of 20 jobs from many
users touches nearly as many partitions as it has jobs. So the batches in flight do not write:
they hand their decided records to :class:`WriteBehind`, which gathers them into a
*generation* and stores a whole generation at once (one call per partition it touches) when

* it holds ``max_records`` records, or
* its first record has waited ``max_delay`` seconds, or
* the worker has no backlog (its last receive came back short), so that a worker under light
  load stores each batch at once, as before.

While one generation is being stored the next one fills; a batch that finds both full waits
(:meth:`WriteBehind.wait_for_room`), so memory stays bounded whatever the backlog. A batch's
messages are deleted only after its :class:`WriteRequest` completes, that is after its records
are stored, so a process killed at any point leaves every job either stored or still on the
queue. If storing a generation fails, each request is stored again on its own, so one bad
request fails alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from constellation.index.port import VectorIndex, VectorRecord
from constellation.worker.outcomes import Pending

#: each job's outcome once written, how many of its records were upserted, and the sizes of the
#: index upserts it led (a call shared by several requests counts with the first of them)
Written = tuple[list[tuple[Pending, str]], int, tuple[int, ...]]


@dataclass(eq=False)
class WriteRequest:
    """One batch's decided writes to one index; ``future`` completes once they are stored (and
    every request it depends on, whose unstored record decided a skip, is stored too)."""

    index: VectorIndex
    #: record id → its new record, or None to delete it
    records: dict[str, VectorRecord | None]
    done: list[tuple[Pending, str]]
    upserted: int
    #: requests whose records, not yet stored when this one was decided, made it skip a job
    after: set[WriteRequest] = field(default_factory=set)
    future: Future[Written] = field(default_factory=Future)
    #: the tick at which its records were stored (None: not yet, or never)
    stored_at: int | None = None
    error: BaseException | None = None
    calls: tuple[int, ...] = ()


@dataclass(eq=False)
class _Generation:
    opened: float
    requests: list[WriteRequest] = field(default_factory=list)
    #: requests that write nothing themselves but wait for one of this generation's
    waiting: list[WriteRequest] = field(default_factory=list)
    size: int = 0
    due: bool = False


class WriteBehind:
    """Gathers :class:`WriteRequest` s into generations and stores each in one call per index.

    ``tick()`` numbers events (a generation stored) so that callers can tell what was stored
    before a moment; ``on_stored`` runs after each generation, under no lock of ours.
    """

    def __init__(
        self,
        *,
        max_records: int = 4000,
        max_delay: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        idle: float = 2.0,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.max_records = max(1, max_records)
        self.max_delay = max_delay
        self.clock = clock
        self.idle = idle
        self.on_stored = on_stored
        self._cond = threading.Condition()
        self._open: _Generation | None = None
        self._storing: _Generation | None = None
        self._backlog = False
        self._running = False
        self._ticks = 0

    # what the batches call ---------------------------------------------------------------------
    def backlog(self, busy: bool) -> None:
        """Whether the worker has a backlog: without one, every generation is stored at once."""
        with self._cond:
            self._backlog = busy
            if not busy and self._open is not None:
                self._open.due = True
            self._cond.notify_all()

    def flush(self) -> None:
        """Store what is gathered now, without waiting for the size or time bound."""
        with self._cond:
            if self._open is not None:
                self._open.due = True
                self._cond.notify_all()

    def wait_for_room(self) -> None:
        """Block while one generation is being stored and the next one is full."""
        with self._cond:
            while (
                self._storing is not None
                and self._open is not None
                and self._open.size >= self.max_records
            ):
                self._cond.wait(0.5)

    def tick(self) -> int:
        with self._cond:
            return self._ticks

    def add(self, request: WriteRequest) -> None:
        """Queue ``request``: its records go into the open generation; a request with none
        completes with the latest unstored request it depends on. Call under the caller's
        decision lock, so that generations keep the order of decisions."""
        with self._cond:
            if not request.records:
                pending = [r for r in request.after if r.stored_at is None and r.error is None]
                target = self._holding(pending)
                if target is None:
                    _complete(request)
                    return
                target.waiting.append(request)
                return
            generation = self._open
            if generation is None:
                generation = self._open = _Generation(self.clock(), due=not self._backlog)
            generation.requests.append(request)
            generation.size += len(request.records)
            self._start()
            self._cond.notify_all()

    def _holding(self, requests: list[WriteRequest]) -> _Generation | None:
        """The latest generation holding one of ``requests`` (the open one is the latest)."""
        for generation in (self._open, self._storing):
            if generation is not None and any(r in requests for r in generation.requests):
                return generation
        return None

    # the storing thread -----------------------------------------------------------------------
    def _start(self) -> None:
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name="index-writes", daemon=True).start()

    def _take(self) -> _Generation | None:
        with self._cond:
            idle_since = self.clock()
            while True:
                generation = self._open
                now = self.clock()
                if generation is not None and (
                    generation.due
                    or generation.size >= self.max_records
                    or now - generation.opened >= self.max_delay
                ):
                    self._open, self._storing = None, generation
                    self._cond.notify_all()
                    return generation
                if generation is None and now - idle_since >= self.idle:
                    self._running = False  # a later request starts a new thread
                    return None
                wait = self.idle if generation is None else generation.opened + self.max_delay - now
                self._cond.wait(max(0.001, min(wait, self.idle)))

    def _run(self) -> None:
        while (generation := self._take()) is not None:
            try:
                self._store(generation)
            finally:
                with self._cond:
                    self._ticks += 1
                    for request in generation.requests:
                        if request.error is None:
                            request.stored_at = self._ticks
                    self._storing = None
                    self._cond.notify_all()
                self.on_stored()
                for request in [*generation.requests, *generation.waiting]:
                    _complete(request)

    def _store(self, generation: _Generation) -> None:
        """One upsert and one delete per index for the whole generation; if that fails, each
        request again on its own."""
        try:
            calls = _write(generation.requests)
        except BaseException:
            for request in generation.requests:
                try:
                    request.calls = _write([request]).get(id(request.index), ())
                except BaseException as exc:
                    request.error = exc
            return
        for request in generation.requests:  # the calls count with the first request of each
            request.calls = calls.pop(id(request.index), ())


def _write(requests: list[WriteRequest]) -> dict[int, tuple[int, ...]]:
    """Store the requests' final records (a later request's decision on an id wins), one upsert
    and one delete per index; the upsert sizes by index."""
    by_index: dict[int, tuple[VectorIndex, dict[str, VectorRecord | None]]] = {}
    for request in requests:
        by_index.setdefault(id(request.index), (request.index, {}))[1].update(request.records)
    calls: dict[int, tuple[int, ...]] = {}
    for key, (index, final) in by_index.items():
        upserts = [record for record in final.values() if record is not None]
        if upserts:
            index.upsert(upserts)
            calls[key] = (len(upserts),)
        deletes = [id_ for id_, record in final.items() if record is None]
        if deletes:
            index.delete(deletes)
    return calls


def _complete(request: WriteRequest) -> None:
    failed = request.error or next((r.error for r in request.after if r.error is not None), None)
    if failed is not None:
        request.future.set_exception(failed)
    else:
        request.future.set_result((request.done, request.upserted, request.calls))
