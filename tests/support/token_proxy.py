"""A Chroma server that demands a token: a small proxy in front of `chroma run`.

Chroma 1.x's own server (`chroma run`) takes no authentication settings any more, so the
token a plan gives (``index.auth_token``) is checked here, as Chroma's token auth did: every
request but the heartbeat must carry ``Authorization: Bearer <token>`` (or ``X-Chroma-Token``),
else 401 with Chroma's own error body. The tokens each request carried are recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP = {"host", "content-length", "connection", "transfer-encoding", "authorization"}


@dataclass
class TokenProxy:
    url: str
    #: the token each request carried ("" for none), in order
    seen: list[str] = field(default_factory=list)


@contextmanager
def token_proxy(upstream: str, token: str) -> Iterator[TokenProxy]:
    """A proxy on a free loopback port to ``upstream`` that refuses requests without ``token``."""
    client = httpx.Client(base_url=upstream, timeout=60)
    proxy = TokenProxy("")

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            given = given or self.headers.get("X-Chroma-Token", "")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith("/api/v2/heartbeat"):
                proxy.seen.append(given)
                if given != token:
                    self._send(401, json.dumps({"error": "AuthorizationError", "message": "no"}))
                    return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = client.request(self.command, self.path, content=body, headers=headers)
            self._send(answer.status_code, answer.content, answer.headers.get("content-type"))

        def _send(self, status: int, body: str | bytes, kind: str | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", kind or "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        client.close()
