"""Many callers' requests served together, by one thread, in one call.

The worker has up to ``max_concurrency`` batches in flight. Each would make its own model call,
its own index read and its own index write; but the model embeds one long, length-sorted call
faster than several short ones (less padding), and an index split into partitions pays a fixed
cost per call and partition. A :class:`Coalescer` lets each batch ask for its part and wait,
while one thread takes every request pending at that moment and serves them all in one call.

The serving thread does one thing at a time, in order: for the index writes that is also what
makes "read what is stored, decide, write" atomic within a process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


class Coalescer(Generic[Req, Res]):
    """Serve requests in groups: ``serve(requests)`` returns one result per request, in order.

    ``size(request)`` weighs a request (texts, ids) and a group stops growing past ``limit``
    (one request is always taken, whatever it weighs). When ``serve`` raises for a group of
    several requests, each is served again on its own, so one bad request fails alone.

    The thread starts with the first request and ends after ``idle`` seconds without one, so a
    coalescer needs no closing and leaves nothing running behind it.
    """

    def __init__(
        self,
        serve: Callable[[Sequence[Req]], Sequence[Res]],
        *,
        name: str,
        limit: int = 1_000_000,
        size: Callable[[Req], int] = lambda _: 1,
        idle: float = 2.0,
    ) -> None:
        self._serve = serve
        self._name = name
        self._limit = limit
        self._size = size
        self._idle = idle
        self._pending: list[tuple[Req, Future[Res]]] = []
        self._ready = threading.Condition()
        self._running = False

    def __call__(self, request: Req) -> Res:
        """Submit ``request`` and wait for its result (or its error)."""
        future: Future[Res] = Future()
        with self._ready:
            self._pending.append((request, future))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            self._ready.notify()
        return future.result()

    def _take(self) -> list[tuple[Req, Future[Res]]] | None:
        with self._ready:
            if not self._pending:
                self._ready.wait(self._idle)
            if not self._pending:
                self._running = False  # a later request starts a new thread
                return None
            group: list[tuple[Req, Future[Res]]] = []
            weight = 0
            while self._pending:
                request = self._pending[0][0]
                weight += self._size(request)
                if group and weight > self._limit:
                    break
                group.append(self._pending.pop(0))
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
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
