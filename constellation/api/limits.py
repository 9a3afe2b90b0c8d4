"""Load limits: a bounded number of requests in flight, and a bounded JSON body.

Beyond ``service.max_in_flight`` requests at once the answer is 503 with ``Retry-After`` at
once, instead of a queue that grows until every client times out. The probes (``/healthz``,
``/readyz``) and ``/metrics`` are not counted: they must answer most of all when the service is
overloaded, and a readiness check left running by a prober that gave up must not hold a slot;
``/readyz`` says not ready while every slot is taken (:class:`Load`).
A body over ``service.max_body_bytes`` is a 413, whether its ``Content-Length`` says so or it
streams past the limit. The body is read whole before the request takes a slot, within
``service.body_timeout`` (else 408): a client that sends its headers and stalls holds no slot,
so stalled clients cannot lock the others out. Every body is JSON whatever its
``Content-Type`` says (``curl -d`` sends a form type), so the header is not needed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from constellation.api.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header,
    problem,
    send_json,
)

#: paths outside the in-flight bound
UNBOUNDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class Load:
    """The requests in flight and their bound, shared by the limit and ``/readyz``."""

    limit: int
    #: requests in flight now (one event loop: no lock needed)
    in_flight: int = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit


class InFlightLimit:
    """ASGI middleware: at most ``load.limit`` HTTP requests at once, the rest 503 +
    Retry-After."""

    def __init__(self, app: ASGIApp, load: Load, retry_after: int) -> None:
        self.app = app
        self.load = load
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNBOUNDED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.load.full:
            detail = (
                f"{self.load.in_flight} requests in flight, the most this service takes at "
                f"once (service.max_in_flight); retry after {self.retry_after}s"
            )
            await send_json(
                send,
                503,
                problem("overloaded", detail),
                {"Retry-After": str(self.retry_after)},
            )
            return
        self.load.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.in_flight -= 1


class JsonBody:
    """ASGI middleware: read the body whole, up to ``limit`` bytes (a larger one is a 413), and
    hand it on as JSON."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                await self._too_slow(send, size)
                return
            if message["type"] == "http.disconnect":
                return  # the client went away before its body arrived: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope["headers"] = [
            *((k, v) for k, v in scope.get("headers", ()) if k != b"content-type"),
            (b"content-type", b"application/json"),
        ]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as servers do

        await self.app(scope, replay, send)

    async def _too_slow(self, send: Send, size: int) -> None:
        detail = (
            f"the body did not arrive within {self.timeout:g}s (service.body_timeout; "
            f"{size} bytes came)"
        )
        await send_json(send, 408, problem("timeout", detail), {"Connection": "close"})

    async def _too_large(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "the body"
        detail = f"{size} is over the limit of {self.limit} bytes (service.max_body_bytes)"
        # The rest of the body is never read: the connection cannot carry another request.
        await send_json(send, 413, problem("too_large", detail), {"Connection": "close"})
