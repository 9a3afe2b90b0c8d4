"""HTTP calls with a total time limit: the webhook and Prometheus never hold a command longer.

``urllib``'s ``timeout`` applies to each socket operation, so a server that answers one byte
every few seconds holds the caller forever. :func:`fetch` gives the whole call (connect, send,
headers, body) one deadline: a timer shuts the connection's socket down when it passes, which
ends whatever read is blocked, and the call raises :class:`TimeoutError` saying how long it
waited. A password in the URL (``http://user:PASSWORD@host``) becomes HTTP basic
authentication, as operators mean it, and never appears in a message.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from constellation.masking import masked

#: the most a response body may hold (Prometheus answers and webhook replies are small)
MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def fetch(
    url: str,
    *,
    deadline: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request and its whole response within ``deadline`` seconds.

    Raises :class:`TimeoutError` past the deadline, :class:`OSError` or
    :class:`http.client.HTTPException` when the server is unreachable or answers garbage, and
    :class:`ValueError` for a URL that is not http(s). Messages name the URL masked.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {masked(url)}")
    sent = dict(headers or {})
    if parts.password is not None or parts.username:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        sent["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=deadline)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        if expired.is_set():
            raise TimeoutError
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read(MAX_BODY)
        if expired.is_set():  # a shut-down socket can look like a short, complete answer
            raise TimeoutError
        return Reply(response.status, data)
    except (OSError, http.client.HTTPException):
        if expired.is_set():
            raise TimeoutError(
                f"no complete answer from {masked(url)} within {deadline:g}s"
            ) from None
        raise
    finally:
        timer.cancel()
        connection.close()
