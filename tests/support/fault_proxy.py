"""A small fault proxy of ours in front of an embedding provider (Infinity in the tests).

It forwards each request to the provider and hands back its answer, unless a fault is armed:
a run of 429s with ``Retry-After`` (seconds or an HTTP date), a burst of 503s, slow answers,
a 400 for any request holding one marked input, vectors of the wrong length, or an outage
(the port closed: connections refused, as when a server is down). Faults are armed from the
test's thread; every request is logged with when it came and what it was answered.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class Seen:
    at: float
    inputs: int
    status: int


class FaultProxy:
    """Forwards ``POST``/``GET`` to ``upstream`` (a base URL) from a free loopback port."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._client = httpx.Client(timeout=120, trust_env=False)
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self._rate_limited = 0
        self._retry_after = "1"
        self._failing = 0
        self._slow = 0
        self._slow_seconds = 0.0
        self.refuse_marker: str | None = None
        self.wrong_dimension = False
        #: headers added to every answer passed through (``x-ratelimit-*``, as OpenAI sends)
        self.extra_headers: dict[str, str] = {}
        self._connections: set[socket.socket] = set()
        self._server = self._serve(0)
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # faults ---------------------------------------------------------------------------------
    def rate_limit(self, count: int, retry_after: float = 1.0, *, as_date: bool = False) -> None:
        """The next ``count`` requests get 429 with ``Retry-After`` (seconds, or the date
        that many seconds from now)."""
        with self._lock:
            self._rate_limited = count
            self._retry_after = (
                formatdate(time.time() + retry_after, usegmt=True)
                if as_date
                else f"{retry_after:g}"
            )

    def fail(self, count: int) -> None:
        """The next ``count`` requests get 503."""
        with self._lock:
            self._failing = count

    def slow(self, count: int, seconds: float) -> None:
        """The next ``count`` answers come ``seconds`` late."""
        with self._lock:
            self._slow, self._slow_seconds = count, seconds

    def down(self) -> None:
        """An outage: the port closes and open connections are cut (a client's kept-alive
        ones included); connections are refused until :meth:`up`."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_now = list(self._connections)
        for connection in open_now:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        self._server = self._serve(self.port)

    def close(self) -> None:
        self.down()
        self._client.close()

    def answered(self, status: int) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.status == status)

    # serving --------------------------------------------------------------------------------
    def _serve(self, port: int) -> ThreadingHTTPServer:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                proxy._forward(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy._forward(self, self.rfile.read(length))

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a connection cut by an outage: expected, not worth a traceback

        server = Server(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True).start()
        return server

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        inputs = json.loads(body).get("input", []) if body else []
        status, headers, content = self._fault(inputs)
        if status == 0:
            with self._lock:
                delay = self._slow_seconds if self._slow > 0 else 0.0
                self._slow -= 1 if self._slow > 0 else 0
            if delay:
                time.sleep(delay)
            status, headers, content = self._upstream(handler, body)
        with self._lock:
            self.seen.append(Seen(time.monotonic(), len(inputs), status))
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def _fault(self, inputs: list[str]) -> tuple[int, dict[str, str], bytes]:
        """An armed fault's answer, or status 0 to forward."""
        with self._lock:
            if self._rate_limited > 0:
                self._rate_limited -= 1
                return _error(429, "rate limit reached", {"Retry-After": self._retry_after})
            if self._failing > 0:
                self._failing -= 1
                return _error(503, "overloaded, try again")
            marker = self.refuse_marker
        if marker and any(marker in text for text in inputs):
            return _error(400, f"input rejected: it contains {marker!r}")
        return 0, {}, b""

    def _upstream(
        self, handler: BaseHTTPRequestHandler, body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in handler.headers.items() if k.lower() == "authorization"}
        headers["Content-Type"] = "application/json"
        try:
            reply = self._client.request(
                handler.command, self.upstream + handler.path, content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            return _error(502, f"upstream: {exc}")
        content = reply.content
        if self.wrong_dimension and reply.status_code == 200 and body:
            payload = reply.json()
            for row in payload["data"]:
                row["embedding"] = row["embedding"] * 2  # 768 instead of 384
            content = json.dumps(payload).encode()
        return (
            reply.status_code,
            {"Content-Type": "application/json", **self.extra_headers},
            content,
        )


def _error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"message": message, "type": "test_fault"}}).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, body
