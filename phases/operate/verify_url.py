"""``verify --url``: the deployment checks against a running service, over HTTP only.

The seed app's checks, made by a client that knows nothing but the URL and a token: the service
answers, the token is accepted and ``/stats`` gives the figures, every system is ready, and a
round trip: a test job for the reserved user is accepted by ``/embed``, found by ``/query``
once a worker has stored it, then removed (an empty-text job for the same note) and gone.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from phases.operate.verify import Checklist, CheckResult, VerifyReport
from phases.operate.verify_roundtrip import VERIFY_TEXT, VERIFY_USER


class _Http:
    """JSON over HTTP with a bearer token; never raises for an HTTP status."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _detail(status: int, body: Any) -> str:
    said = body.get("detail") if isinstance(body, dict) else body
    return f"{status}: {said}"


def verify_service(
    url: str,
    token: str | None,
    *,
    timeout: float = 120.0,
    request_timeout: float = 30.0,
    on_check: Callable[[CheckResult], None] | None = None,
) -> VerifyReport:
    """Check a running service at ``url``: health, token and stats, readiness, a round trip."""
    http = _Http(url, token, request_timeout)
    checklist = Checklist(on_check)
    checks, record = checklist.checks, checklist.record

    try:
        status, body = http("GET", "/healthz")
    except OSError as exc:
        record("service answers", False, f"cannot reach {url}: {getattr(exc, 'reason', exc)}")
        return VerifyReport(checks)
    if not record("service answers", status == 200, f"{url}/healthz → {status}"):
        return VerifyReport(checks)
    status, body = http("GET", "/stats")
    if status in (401, 403):
        hint = "give --token (or CONSTELLATION_TOKEN)" if not token else "check the token"
        record("token accepted", False, f"{_detail(status, body)}; {hint}")
        return VerifyReport(checks)
    if not record(
        "stats answer",
        status == 200,
        _stats_summary(body) if status == 200 else _detail(status, body),
    ):
        return VerifyReport(checks)
    status, body = http("GET", "/readyz")
    ready = status == 200 and isinstance(body, dict)
    failing = ", ".join(body.get("failing", [])) if isinstance(body, dict) else str(body)
    if not record(
        "ready", ready, "queue, index, model and state store" if ready else f"not ready: {failing}"
    ):
        record("round trip", False, "skipped: the service is not ready")
        return VerifyReport(checks)
    _round_trip(http, int(body.get("defaultVersion", 1)), timeout, record)
    return VerifyReport(checks)


def _stats_summary(stats: Any) -> str:
    try:
        queue, dead = stats["queue"], stats["dead_letter"]
        sizes = ", ".join(f"v{v}: {n}" for v, n in stats["index_size"].items()) or "empty"
        return f"queue {queue['name']}: {queue['total']} messages; {dead['total']} dead letters; index {sizes}"
    except (KeyError, TypeError):
        return "answered, but not with the figures of `stats --json`"


Record = Callable[[str, bool, str], bool]


def _round_trip(http: _Http, version: int, timeout: float, record: Record) -> None:
    note = f"verify-{uuid.uuid4().hex[:12]}"
    created = int(time.time() * 1000)
    job = {"userId": VERIFY_USER, "noteId": note, "text": VERIFY_TEXT, "created": created}
    status, body = http("POST", "/embed", {**job, "version": version})
    if not record(
        "test job accepted",
        status == 202,
        f"note {note}" if status == 202 else _detail(status, body),
    ):
        return
    query = {"text": VERIFY_TEXT, "userId": VERIFY_USER, "topK": 3}

    def top() -> tuple[int, Any]:
        return http("POST", "/query", query)

    def has_note() -> bool | None:
        status, body = top()
        if status != 200:
            return None
        return any(r["noteId"] == note for r in body["results"])

    found = _wait(lambda: has_note() is True, timeout)
    if not record(
        "found by /query",
        found,
        "stored by the worker and found"
        if found
        else f"not found within {timeout:.0f}s (is a worker running?)",
    ):
        return
    status, body = http(
        "POST", "/embed", {**job, "text": "", "created": created + 1, "version": version}
    )
    if status != 202:
        record("test note removed", False, _detail(status, body))
        return
    removed = _wait(lambda: has_note() is False, timeout)
    record("test note removed", removed, "emptied through the queue" if removed else "still found")


def _wait(condition: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False
