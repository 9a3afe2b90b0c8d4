"""Alerts to PagerDuty through its Events API v2: a ``trigger`` when an alert fires and a
``resolve`` when it clears, both with the alert's one ``dedup_key``, so PagerDuty opens one
incident per alert and closes it. Pending alerts page nobody.

The routing key comes from the plan (``monitoring.pagerduty.routing_key: ${PAGERDUTY_...}``)
and is never written to a message or a log. Failures (PagerDuty unreachable, an event it
rejects, its rate limit) become a failed :class:`Delivery`, never an exception.
"""

from __future__ import annotations

import json
from http import client as http_client
from typing import TYPE_CHECKING, Any

from constellation.deadline import fetch
from constellation.masking import masked
from constellation.monitoring.message import Delivery, dedup_key

if TYPE_CHECKING:
    from constellation.monitoring.alerts import AlertChange
    from constellation.plan.monitoring import PagerDutyConfig

CHANNEL = "pagerduty"
#: PagerDuty's severities are critical, error, warning and info: ours map onto them
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def event(
    change: AlertChange, body: dict[str, Any], routing_key: str, source: str
) -> dict[str, Any] | None:
    """The Events API v2 event for ``change``: a trigger when it fires, a resolve when it
    clears, None otherwise (pending, or a pending alert that cleared)."""
    key = dedup_key(body["plan"], body["environment"], body["alert"])
    if change.resolved:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    if change.state != "firing":
        return None
    rule = change.rule
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "client": "Constellation",
        "payload": {
            "summary": body["text"][:1024],
            "source": source,
            "severity": SEVERITY[rule.severity],
            "timestamp": body["at"],
            "component": "embedding service",
            "group": f"{body['plan']}/{body['environment']}",
            "class": rule.metric,
            "custom_details": {
                k: body[k] for k in ("metric", "value", "op", "threshold", "for_seconds", "summary")
            },
        },
    }


class PagerDuty:
    """Sends alert changes to one PagerDuty integration."""

    channel = CHANNEL

    def __init__(self, config: PagerDutyConfig, *, timeout: float = 10.0) -> None:
        self.url = config.url
        self._routing_key = config.routing_key.get_secret_value()
        self._source = config.source
        self.timeout = timeout

    def send(self, change: AlertChange, body: dict[str, Any]) -> Delivery | None:
        """One event (None when the change pages nobody)."""
        source = self._source or f"constellation {body['plan']}/{body['environment']}"
        data = event(change, body, self._routing_key, source)
        if data is None:
            return None
        action = data["event_action"]
        try:
            reply = fetch(
                self.url,
                deadline=self.timeout,
                method="POST",
                body=json.dumps(data).encode(),
                headers={"Content-Type": "application/json"},
            )
        except (OSError, ValueError, http_client.HTTPException) as exc:
            return self._failed(body, f"{action} not sent: {exc}")
        if reply.status == 202:
            return Delivery(
                CHANNEL, body["alert"], True, f"{action} accepted ({data['dedup_key']})"
            )
        return self._failed(body, f"{action} refused: HTTP {reply.status}{_why(reply.body)}")

    def _failed(self, body: dict[str, Any], detail: str) -> Delivery:
        return Delivery(CHANNEL, body["alert"], False, masked(detail, (self._routing_key,)))


def _why(raw: bytes) -> str:
    """PagerDuty's own words for a refused event (``message`` and ``errors``)."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    errors = answer.get("errors")
    parts = [str(answer.get("message") or "")]
    if isinstance(errors, list):
        parts += [str(e) for e in errors]
    said = "; ".join(p for p in parts if p)
    return f" ({said})" if said else ""
