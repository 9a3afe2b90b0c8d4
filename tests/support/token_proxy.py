"""A Chroma server that demands a token: a small proxy in front of `chroma run`.

Chroma 1.x's own server (`chroma run`) takes no authentication settings any more, so the
token a plan gives (``index.auth_token``) is checked here, as Chroma's token auth did: every
request but the heartbeat must carry ``Authorization: Bearer <token>`` (or ``X-Chroma-Token``),
else 401 with Chroma's own error body. The tokens each request carried are recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.http import Request, local_server

_HOP = {"host", "content-length", "connection", "transfer-encoding", "authorization"}


@dataclass
class TokenProxy:
    url: str
    #: the token each request carried ("" for none), in order
    seen: list[str] = field(default_factory=list)


@contextmanager
def token_proxy(upstream: str, token: str) -> Iterator[TokenProxy]:
    """A proxy on a free loopback port to ``upstream`` that refuses requests without ``token``."""
    seen: list[str] = []
    with httpx.Client(base_url=upstream, timeout=60) as client:

        def answer(request: Request) -> tuple[int, Any]:
            if not request.path.startswith("/api/v2/heartbeat"):
                headers = {k.lower(): v for k, v in request.headers.items()}
                given = headers.get("authorization", "").removeprefix("Bearer ").strip()
                seen.append(given or headers.get("x-chroma-token", ""))
                if seen[-1] != token:
                    return 401, {"error": "AuthorizationError", "message": "unauthorized"}
            forwarded = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            response = client.request(
                request.method, request.path, content=request.body, headers=forwarded
            )
            return response.status_code, response.json() if response.content else None

        with local_server(answer) as server:
            yield TokenProxy(server.url, seen)
