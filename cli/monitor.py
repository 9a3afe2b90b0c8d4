"""``constellation monitor``: evaluate the plan's alert rules (once, or every interval)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from cli import context, logs
from cli.output import Output, timestamp
from cli.params import Json
from cli.params import seconds as parse_seconds
from constellation.jsondata import jsonable
from constellation.monitoring.alerts import condition
from constellation.monitoring.rounds import AlertReport, check_alerts, watch_alerts
from constellation.monitoring.stats import ServiceStats


def monitor(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate once; exit 1 while any alert fires.")
    ] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Seconds between evaluations (or 30s, 1m).")
    ] = "30",
    json_out: Json = False,
) -> None:
    """Evaluate the alert rules (ok / pending / firing) and notify each change of state."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    services = app_ctx.services(write=False)
    out = app_ctx.output
    # Failed notifications are logged as warnings on stderr, never fatal.
    logs.configure(json_lines=False, level=logging.WARNING)
    if once:
        report = check_alerts(plan, services)
        out.show(report, show_alerts, as_json=as_json)
        if report.firing:
            out.error(
                f"{len(report.firing)} alert(s) firing: " + ", ".join(s.name for s in report.firing)
            )
            raise typer.Exit(1)
        return
    seconds = parse_seconds(interval) or 30.0
    watch_alerts(
        plan,
        services,
        interval=seconds,
        on_report=lambda report: out.show(report, show_alerts, as_json=as_json),
    )


def show_alerts(out: Output, report: AlertReport) -> None:
    for note in report.stats.notes:
        out.warn(note)
    rows = [
        (
            s.name,
            s.state,
            s.value if s.value is None else round(s.value, 4),
            condition(s.rule),
            timestamp(s.active_since),
            s.rule.severity,
            s.rule.summary,
        )
        for s in report.statuses
    ]
    out.table(
        ["alert", "state", "value", "condition", "since", "severity", "summary"],
        rows,
        title=f"alerts at {timestamp(report.at)}",
        caption=scope_line(report.stats),
    )
    for change in report.changes:
        out.info(f"{change.rule.name}: {change.previous} → {change.state}")


def as_json(report: AlertReport) -> dict[str, Any]:
    """An evaluation for machines: the firing names first, then every rule and each change."""
    return {
        "at": report.at,
        "firing": [s.name for s in report.firing],
        "alerts": [
            {
                "name": s.name,
                "state": s.state,
                "metric": s.rule.metric,
                "value": s.value,
                "condition": condition(s.rule),
                "active_since": s.active_since,
                "severity": s.rule.severity,
                "summary": s.rule.summary,
            }
            for s in report.statuses
        ],
        "scope": jsonable(report.stats.scope),
        "window_seconds": report.stats.window.seconds,
        "changes": [
            {"name": c.rule.name, "from": c.previous, "to": c.state, "value": c.value}
            for c in report.changes
        ],
        "notifications": report.deliveries,
    }


def scope_line(stats: ServiceStats) -> str:
    """One line: the deployment counted, since when, and the window."""
    scope = stats.scope
    parts = []
    if scope is not None and scope.deployment is not None:
        parts.append(f"deployment {scope.deployment.key} (queue {scope.deployment.queue})")
    if scope is not None and scope.since:
        parts.append(f"counted since {timestamp(scope.since)}")
    parts.append(f"window last {stats.window.seconds:g}s")
    return " · ".join(parts)
