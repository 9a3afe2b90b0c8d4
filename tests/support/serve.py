"""``constellation serve`` as a real process on a free loopback port, and a small HTTP client.

The service is started exactly as an operator starts it (the installed console script), so the
tests exercise uvicorn, the middlewares and the process's signal handling over real sockets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port

CONSTELLATION = str(Path(sys.executable).parent / "constellation")

#: the tokens test plans declare (``service.tokens`` read them from these variables)
WRITE_TOKEN = "test-write-token-0123456789abcdef"
READ_TOKEN = "test-read-token-0123456789abcdef"
TOKEN_ENV = {"TEST_WRITE_TOKEN": WRITE_TOKEN, "TEST_READ_TOKEN": READ_TOKEN}
TOKENS_SECTION: dict[str, Any] = {
    "tokens": [
        {"name": "app", "token": "${TEST_WRITE_TOKEN}", "scope": "write"},
        {"name": "dashboards", "token": "${TEST_READ_TOKEN}", "scope": "read"},
    ]
}


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: Any

    def __repr__(self) -> str:  # what a failed assertion shows
        return f"Answer({self.status}, {self.body!r})"


class ServeProcess:
    """``constellation --plan PLAN serve --port N ARGS`` and a client for it."""

    def __init__(self, plan: Path, *args: str, logs: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"serve-{self.port}.log"
        environ = {**os.environ, **TOKEN_ENV, "NO_COLOR": "1", **(env or {})}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [CONSTELLATION, "--plan", str(plan), "serve", "--port", str(self.port), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
            )
        self.client = httpx.Client(base_url=self.url, timeout=60.0)

    # lifecycle ---------------------------------------------------------------------------------
    def wait_healthy(self, timeout: float = 120.0) -> None:
        self._wait(lambda: self.call("GET", "/healthz", token=None).status == 200, timeout)

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until ``/readyz`` answers 200 (the model loaded, every system reachable)."""
        self._wait(lambda: self.call("GET", "/readyz").status == 200, timeout)

    def _wait(self, condition: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"serve not ready within {timeout}s:\n{self.tail()}")

    def terminate(self, timeout: float = 90.0) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    # requests ----------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = WRITE_TOKEN,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request; the body as JSON (``raw`` sends bytes as they are)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        response = self.client.request(method, path, content=content, headers=sent)
        try:
            data: Any = response.json()
        except ValueError:
            data = response.text
        return Answer(response.status_code, response.headers, data)


def partial_request(url_port: int, path: str, body: bytes, token: str, sent: int) -> socket.socket:
    """A POST whose headers and first ``sent`` body bytes are on the wire, the rest withheld:
    a request held in flight for as long as the test likes."""
    sock = socket.create_connection(("127.0.0.1", url_port), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[:sent])
    return sock


def finish_request(sock: socket.socket, rest: bytes) -> tuple[int, Any]:
    """Send the withheld bytes and read the answer: (status, JSON body)."""
    sock.sendall(rest)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (
            int(v)
            for k, _, v in (h.partition(": ") for h in lines[1:])
            if k.lower() == "content-length"
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    sock.close()
    return status, json.loads(body) if body else None


def found(serve: ServeProcess, user: str, text: str, note: str, timeout: float = 60.0) -> Answer:
    """Query until ``note`` is the user's best hit (the worker stores jobs asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = serve.call("POST", "/query", {"text": text, "userId": user, "topK": 3})
        assert answer.status == 200, answer
        hits = answer.body["results"]
        if hits and hits[0]["noteId"] == note:
            return answer
        assert time.monotonic() < deadline, f"{note} not found for {user}: {answer}"
        time.sleep(0.2)
