"""One access-log line and the request metrics for every HTTP request, and the last word on
errors: anything a route did not handle becomes a 500 that names the request id, never a
traceback (the traceback goes to the log).

The log line names the caller by its token's *name*; token values, bodies and query texts are
never logged. With ``--log-json`` each line is one JSON object.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from constellation.api.asgi import ASGIApp, Message, Receive, Scope, Send, header, problem
from constellation.api.asgi import send_json as _send_json

log = logging.getLogger("constellation.access")
errors = logging.getLogger("constellation.api")

#: endpoints by name in the metrics; any other path counts as "other" (bounded label values)
ENDPOINTS = frozenset(
    {
        "/embed",
        "/query",
        "/notes",
        "/search",
        "/stats",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class HttpMetrics:
    """Request counts and latency by endpoint, method and status, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["endpoint", "method", "status"]
        self.requests = Counter(
            "constellation_http_requests",
            "HTTP requests answered, by endpoint, method and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "constellation_http_request_duration_seconds",
            "Time from a request's arrival to its last byte sent.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "constellation_http_requests_in_flight",
            "HTTP requests being handled now.",
            registry=self.registry,
        )


class AccessLog:
    """ASGI middleware (outermost): request id, timing, metrics, the log line, the last 500."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0
        sent = 0

        async def observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed)
        except Exception:
            errors.exception(
                "unhandled error in %s %s (request %s)",
                scope["method"],
                scope["path"],
                request_id,
                extra={"event": "request_error", "request_id": request_id},
            )
            if status == 0:
                status = 500
                detail = f"internal error; the service log has it under request id {request_id}"
                await _send_json(
                    send, 500, problem("internal", detail), {"X-Request-Id": request_id}
                )
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, request_id, status, sent, time.perf_counter() - started)

    def _record(
        self, scope: Scope, request_id: str, status: int, sent: int, seconds: float
    ) -> None:
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        if not path.isprintable():  # a decoded %0A must not start a forged log line
            path = path.encode("unicode_escape").decode("ascii")
        labels = (endpoint, scope["method"], str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(seconds)
        client = (scope.get("client") or ("-", 0))[0]
        caller = scope.get("state", {}).get("caller", "-")
        ms = seconds * 1000
        log.info(
            '%s "%s %s" %s %.1fms caller=%s id=%s',
            client,
            scope["method"],
            path,
            status,
            ms,
            caller,
            request_id,
            extra={
                "event": "request",
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": round(ms, 2),
                "bytes": sent,
                "client": client,
                "caller": caller,
                "request_id": request_id,
            },
        )
