"""Many callers' requests served together, by one thread (or a few), in one call.

The worker has up to ``max_concurrency`` batches in flight. Each would make its own model call,
its own index read and its own index write; but the model embeds one long, length-sorted call
faster than several short ones (less padding), and an index split into partitions pays a fixed
cost per call and partition. A :class:`Coalescer` lets each batch ask for its part and wait,
while a serving thread takes every request pending at that moment and serves them all in one
call.

With one serving thread (the default) requests are served one group at a time, in order: for
the index writes that is also what makes "read what is stored, decide, write" atomic within a
process. The model uses ``threads=2``: two streams of calls, each on its own core, which keeps
the cores busy while the other threads of the worker take their turns (see
:mod:`constellation.embedders.sentence_transformers`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import Future
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np

Req = TypeVar("Req")
Res = TypeVar("Res")


class Coalescer(Generic[Req, Res]):
    """Serve requests in groups: ``serve(requests)`` returns one result per request, in order.

    ``size(request)`` weighs a request (texts, ids) and a group stops growing past ``limit``
    (one request is always taken, whatever it weighs). When ``serve`` raises for a group of
    several requests, each is served again on its own, so one bad request fails alone.

    ``threads`` serving threads take groups in turn; with more than one, a thread takes its
    share of what is pending (the pending weight divided by the threads), so that the others
    find work too. ``setup`` runs once at the start of each serving thread.

    A thread starts when a request finds none waiting and ends after ``idle`` seconds without
    one, so a coalescer needs no closing and leaves nothing running behind it.
    """

    def __init__(
        self,
        serve: Callable[[Sequence[Req]], Sequence[Res]],
        *,
        name: str,
        limit: int = 1_000_000,
        size: Callable[[Req], int] = lambda _: 1,
        idle: float = 2.0,
        threads: int = 1,
        setup: Callable[[], None] | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._serve = serve
        self._name = name
        self._limit = limit
        self._size = size
        self._idle = idle
        self._threads = threads
        self._setup = setup
        self._pending: list[tuple[Req, Future[Res]]] = []
        self._ready = threading.Condition()
        self._running: set[int] = set()  # the numbers of the serving threads alive
        self._waiting = 0  # of which waiting for a request

    @property
    def pending(self) -> int:
        """Requests submitted and not yet taken by a serving thread."""
        with self._ready:
            return len(self._pending)

    def __call__(self, request: Req) -> Res:
        """Submit ``request`` and wait for its result (or its error)."""
        future: Future[Res] = Future()
        with self._ready:
            self._pending.append((request, future))
            if self._waiting == 0 and len(self._running) < self._threads:
                number = min(set(range(1, self._threads + 1)) - self._running)
                self._running.add(number)
                name = self._name if self._threads == 1 else f"{self._name}-{number}"
                threading.Thread(target=self._run, args=(number,), name=name, daemon=True).start()
            self._ready.notify()
        return future.result()

    def _take(self, number: int) -> list[tuple[Req, Future[Res]]] | None:
        with self._ready:
            if not self._pending:
                self._waiting += 1
                self._ready.wait(self._idle)
                self._waiting -= 1
            if not self._pending:
                self._running.discard(number)  # a later request starts a new thread
                return None
            limit = self._limit
            if self._threads > 1:
                pending = sum(self._size(request) for request, _ in self._pending)
                limit = min(limit, math.ceil(pending / self._threads))
            group: list[tuple[Req, Future[Res]]] = []
            weight = 0
            while self._pending:
                request = self._pending[0][0]
                weight += self._size(request)
                if group and weight > limit:
                    break
                group.append(self._pending.pop(0))
            if self._pending:
                self._ready.notify()  # what is left is another thread's share
            return group

    def _run(self, number: int) -> None:
        if self._setup is not None:
            self._setup()
        while True:
            group = self._take(number)
            if group is None:
                return
            try:
                results = self._serve([request for request, _ in group])
            except BaseException as exc:
                if len(group) == 1:
                    group[0][1].set_exception(exc)
                    continue
                for request, future in group:  # who failed? each on its own
                    try:
                        future.set_result(self._serve([request])[0])
                    except BaseException as own:
                        future.set_exception(own)
                continue
            for (_, future), result in zip(group, results, strict=True):
                future.set_result(result)


def split(rows: np.ndarray, calls: Sequence[Sized]) -> list[np.ndarray]:
    """``rows`` computed for several calls' items together, cut back into one slice per call."""
    out, start = [], 0
    for call in calls:
        out.append(rows[start : start + len(call)])
        start += len(call)
    return out
