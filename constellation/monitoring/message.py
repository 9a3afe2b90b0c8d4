"""What every alert channel sends and reports: the alert's body (Slack's ``text`` and the
alert's fields), its one deduplication key, and one delivery's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from constellation.monitoring.alerts import AlertChange

_HEADLINE = {"firing": "FIRING", "pending": "PENDING", "ok": "OK"}


@dataclass(frozen=True)
class Delivery:
    """One attempt to notify: ``channel`` is ``webhook``, ``pagerduty``, ``email`` or
    ``command``."""

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


def dedup_key(plan_name: str, environment: str, alert: str) -> str:
    """One key per alert of one plan and environment: a page's trigger and its resolve, and
    a second trigger while it is open, name the same incident."""
    return f"constellation/{plan_name}/{environment}/{alert}"[:255]
