"""Notifications of alert changes: a webhook (JSON POST) and/or a command.

The webhook body is Slack-compatible (``{"text": ...}``) and carries the alert as structured
fields beside it. The command runs through the shell with ``CONSTELLATION_ALERT*`` variables
describing the change. A failure of either is logged and reported, never raised: monitoring must
keep evaluating when the chat service or the pager script is down.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from http import client as http_client
from typing import TYPE_CHECKING, Any

from constellation.deadline import fetch
from constellation.masking import masked

if TYPE_CHECKING:
    from constellation.monitoring.alerts import AlertChange
    from constellation.plan import Plan

log = logging.getLogger("constellation.monitoring")

_HEADLINE = {"firing": "FIRING", "pending": "PENDING", "ok": "OK"}


@dataclass(frozen=True)
class Delivery:
    """One attempt to notify: ``channel`` is ``webhook`` or ``command``."""

    channel: str
    alert: str
    ok: bool
    detail: str


def payload(change: AlertChange, plan_name: str, environment: str) -> dict[str, Any]:
    """The webhook body: Slack's ``text`` plus the alert's fields."""
    rule = change.rule
    headline = "RESOLVED" if change.resolved else _HEADLINE[change.state]
    value = "no data" if change.value is None else f"{change.value:g}"
    text = (
        f"[{headline}] {rule.name} ({rule.severity}) on {plan_name}/{environment}: "
        f"{rule.summary or rule.metric} — {rule.metric} = {value} "
        f"(alert when {rule.op} {rule.threshold:g} for {rule.for_:g}s)"
    )
    return {
        "text": text,
        "alert": rule.name,
        "state": change.state,
        "previous": change.previous,
        "resolved": change.resolved,
        "severity": rule.severity,
        "metric": rule.metric,
        "value": change.value,
        "op": rule.op,
        "threshold": rule.threshold,
        "for_seconds": rule.for_,
        "summary": rule.summary,
        "plan": plan_name,
        "environment": environment,
        "at": datetime.fromtimestamp(change.at, tz=UTC).isoformat(timespec="seconds"),
    }


def environment_for(body: dict[str, Any]) -> dict[str, str]:
    """``CONSTELLATION_ALERT_*`` variables for the change command."""
    names = {
        "CONSTELLATION_ALERT": "alert",
        "CONSTELLATION_ALERT_STATE": "state",
        "CONSTELLATION_ALERT_PREVIOUS": "previous",
        "CONSTELLATION_ALERT_SEVERITY": "severity",
        "CONSTELLATION_ALERT_METRIC": "metric",
        "CONSTELLATION_ALERT_VALUE": "value",
        "CONSTELLATION_ALERT_THRESHOLD": "threshold",
        "CONSTELLATION_ALERT_SUMMARY": "summary",
        "CONSTELLATION_ALERT_TEXT": "text",
        "CONSTELLATION_ALERT_AT": "at",
        "CONSTELLATION_PLAN_NAME": "plan",
        "CONSTELLATION_ENVIRONMENT": "environment",
    }
    env = {var: "" if body[key] is None else str(body[key]) for var, key in names.items()}
    env["CONSTELLATION_ALERT_RESOLVED"] = "1" if body["resolved"] else "0"
    return env


class Notifier:
    """Sends each alert change to the webhook and/or the command that are set."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        command: str | None = None,
        plan_name: str = "",
        environment: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.webhook_url = webhook_url
        self.command = command
        self.plan_name = plan_name
        self.environment = environment
        self.timeout = timeout

    @classmethod
    def from_plan(cls, plan: Plan) -> Notifier:
        m = plan.monitoring
        return cls(
            webhook_url=m.webhook_url.get_secret_value() if m.webhook_url else None,
            command=m.on_change_command,
            plan_name=plan.name,
            environment=plan.environment,
        )

    def notify(self, change: AlertChange) -> list[Delivery]:
        body = payload(change, self.plan_name, self.environment)
        deliveries = []
        if self.webhook_url:
            deliveries.append(self._post(body))
        if self.command:
            deliveries.append(self._run(body))
        for d in deliveries:
            if not d.ok:
                log.warning(
                    "%s notification for %s failed: %s",
                    d.channel,
                    d.alert,
                    d.detail,
                    extra={"event": "notify_error", "channel": d.channel, "alert": d.alert},
                )
        return deliveries

    def _post(self, body: dict[str, Any]) -> Delivery:
        # One total limit for the whole call: a webhook that answers a byte at a time must
        # not hold `monitor` (urllib's timeout is per read).
        try:
            reply = fetch(
                str(self.webhook_url),
                deadline=self.timeout,
                method="POST",
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        except (OSError, ValueError, http_client.HTTPException) as exc:
            # unreachable, timed out, or not a URL; the URL may carry a token: masked
            return Delivery("webhook", body["alert"], False, masked(str(exc), self._secrets))
        if reply.status >= 400:
            return Delivery(
                "webhook", body["alert"], False, f"HTTP {reply.status} from the webhook"
            )
        return Delivery("webhook", body["alert"], True, f"HTTP {reply.status}")

    @property
    def _secrets(self) -> tuple[str, ...]:
        """The webhook URL's own secrets, for errors that quote parts of it."""
        if not self.webhook_url:
            return ()
        parts = urllib.parse.urlsplit(self.webhook_url)
        return tuple(s for s in (parts.password, parts.query) if s)

    def _run(self, body: dict[str, Any]) -> Delivery:
        try:
            done = subprocess.run(
                str(self.command),
                shell=True,  # the operator's own command line from the plan
                env={**os.environ, **environment_for(body)},
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Delivery("command", body["alert"], False, str(exc))
        if done.returncode:
            tail = (done.stderr or done.stdout).strip()[-300:]
            return Delivery(
                "command", body["alert"], False, f"exit status {done.returncode}: {tail}"
            )
        return Delivery("command", body["alert"], True, "exit status 0")
