"""Notifications of alert changes: a webhook (JSON POST), PagerDuty, email, a command.

The webhook body is Slack-compatible (``{"text": ...}``) and carries the alert as structured
fields beside it. PagerDuty (:mod:`.pagerduty`) and email (:mod:`.mail`) hear of alerts that
fire and clear. The command runs through the shell with ``CONSTELLATION_ALERT*`` variables
describing the change. A rule may name its channels (default: all that are set). A failure of
any is logged and reported, never raised: monitoring must keep evaluating when the chat
service, the pager or the mail server is down.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.parse
from collections.abc import Sequence
from http import client as http_client
from typing import TYPE_CHECKING, Any, Protocol

from constellation.deadline import fetch
from constellation.masking import masked
from constellation.monitoring.message import Delivery, payload

if TYPE_CHECKING:
    from constellation.monitoring.alerts import AlertChange
    from constellation.plan import Plan

log = logging.getLogger("constellation.monitoring")


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


class Channel(Protocol):
    """Where alert changes go: ``send`` returns its delivery, or None when this change is
    not for it (PagerDuty and email hear of firing and resolved alerts only)."""

    channel: str

    def send(self, change: AlertChange, body: dict[str, Any]) -> Delivery | None: ...


class Notifier:
    """Sends each alert change to every channel that is set and that its rule names (a rule
    without ``channels``: all of them). A channel that fails is reported and logged; the
    others are still tried."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        command: str | None = None,
        plan_name: str = "",
        environment: str = "",
        timeout: float = 10.0,
        channels: Sequence[Channel] = (),
    ) -> None:
        self.webhook_url = webhook_url
        self.command = command
        self.plan_name = plan_name
        self.environment = environment
        self.timeout = timeout
        self.channels: list[Channel] = [
            *([Webhook(webhook_url, timeout)] if webhook_url else []),
            *channels,
            *([Command(command, timeout)] if command else []),
        ]

    @classmethod
    def from_plan(cls, plan: Plan) -> Notifier:
        from constellation.monitoring.mail import Email
        from constellation.monitoring.pagerduty import PagerDuty

        m = plan.monitoring
        channels: list[Channel] = []
        if m.pagerduty is not None:
            channels.append(PagerDuty(m.pagerduty))
        if m.email is not None:
            channels.append(Email(m.email))
        return cls(
            webhook_url=m.webhook_url.get_secret_value() if m.webhook_url else None,
            command=m.on_change_command,
            plan_name=plan.name,
            environment=plan.environment,
            channels=channels,
        )

    def notify(self, change: AlertChange) -> list[Delivery]:
        body = payload(change, self.plan_name, self.environment)
        wanted = change.rule.channels
        deliveries = []
        for channel in self.channels:
            if wanted is not None and channel.channel not in wanted:
                continue
            try:
                delivery = channel.send(change, body)
            except Exception as exc:  # a channel's bug must not stop the others, nor monitor
                delivery = Delivery(channel.channel, body["alert"], False, f"failed: {exc!r}")
            if delivery is not None:
                deliveries.append(delivery)
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


class Webhook:
    """A Slack-compatible incoming webhook: every change (pending, firing, resolved)."""

    channel = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, change: AlertChange, body: dict[str, Any]) -> Delivery | None:
        # One total limit for the whole call: a webhook that answers a byte at a time must
        # not hold `monitor` (urllib's timeout is per read).
        try:
            reply = fetch(
                self.url,
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
        parts = urllib.parse.urlsplit(self.url)
        return tuple(s for s in (parts.password, parts.query) if s)


class Command:
    """The plan's ``on_change_command``: every change, in its environment variables."""

    channel = "command"

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout

    def send(self, change: AlertChange, body: dict[str, Any]) -> Delivery | None:
        try:
            done = subprocess.run(
                self.command,
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
