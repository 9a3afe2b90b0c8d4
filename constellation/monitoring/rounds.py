"""One monitoring round: read the service's figures, evaluate the alert rules, notify each change.

``monitor --once`` is one round; ``monitor`` repeats them. The evaluator (:mod:`.alerts`) and
the notifications (:mod:`.notify`) know nothing of each other: a round joins them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from constellation.monitoring.alerts import AlertChange, AlertEvaluator, AlertStatus
from constellation.monitoring.notify import Delivery, Notifier
from constellation.monitoring.readings import MetricReader
from constellation.monitoring.stats import ServiceStats, alert_values, read_stats
from constellation.monitoring.store import MetricsStore
from constellation.plan import Plan
from constellation.services import Services
from constellation.timefields import EPOCH_SECONDS


@dataclass(frozen=True)
class AlertReport:
    """One ``monitor`` round: the figures, every rule's state, and what changed."""

    at: float = field(metadata=EPOCH_SECONDS)
    stats: ServiceStats
    statuses: list[AlertStatus]
    changes: list[AlertChange]
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def firing(self) -> list[AlertStatus]:
        return [s for s in self.statuses if s.state == "firing"]


def check_alerts(
    plan: Plan,
    services: Services,
    *,
    now: float | None = None,
    reader: MetricReader | None = None,
    notifier: Notifier | None = None,
) -> AlertReport:
    """Evaluate the plan's alert rules once; notify each change of state."""
    at = time.time() if now is None else now
    stats = read_stats(plan, services, now=at, reader=reader)
    evaluator = AlertEvaluator(
        plan.monitoring.alerts,
        MetricsStore(plan.metrics_path),
        scope=(plan.name, plan.environment),
    )
    evaluation = evaluator.evaluate(alert_values(stats), at)
    notifier = notifier or Notifier.from_plan(plan)
    deliveries = [d for change in evaluation.changes for d in notifier.notify(change)]
    return AlertReport(at, stats, evaluation.statuses, evaluation.changes, deliveries)


def watch_alerts(
    plan: Plan,
    services: Services,
    *,
    interval: float,
    on_report: Callable[[AlertReport], None],
    rounds: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Evaluate every ``interval`` seconds until interrupted (or for ``rounds`` rounds)."""
    done = 0
    while rounds is None or done < rounds:
        on_report(check_alerts(plan, services))
        done += 1
        if rounds is None or done < rounds:
            sleep(interval)
