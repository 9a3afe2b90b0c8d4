"""A deadline for a request's line and headers, on uvicorn's httptools protocol.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but waits forever for
a request whose headers come slowly or stop half way: such a connection needs no token (the
token is a header) and holds a socket and a parser for as long as the client likes. Here a
connection has ``header_timeout`` seconds from its first byte (or from its opening) until its
headers are complete; then it is answered 408 and closed. The body has its own deadline
(:class:`constellation.api.limits.JsonBody`).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LATE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a ``seconds`` deadline for each request's headers."""

    class HeaderDeadline(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._header_timer: asyncio.TimerHandle | None = None
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # the next request on a kept-alive connection
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(seconds, self._late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            body = (
                b'{"error":"timeout","detail":"the request line and headers did not arrive '
                b'within %gs (service.header_timeout)"}' % seconds
            )
            self.transport.write(_LATE % (len(body), body))
            self.transport.close()

    return HeaderDeadline
