"""``constellation doctor``: the seed's troubleshooting table as diagnoses from live figures.

Four rows, each its own module: queue backlog or slow processing (:mod:`.backlog`), embedding
errors (:mod:`.errors`), slow queries (:mod:`.queries`) and inconsistent results between the
systems (:mod:`.consistency`); a fifth where a model embeds through a provider over HTTP
(:mod:`.provider`: an outage, its key, its dimension, its rate limits). Each finding carries its evidence and the command to run next;
a system that cannot be reached is a finding too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from constellation.errors import ConstellationError, Unreachable
from constellation.monitoring.readings import open_reader
from constellation.monitoring.stats import read_stats
from constellation.wiring.migration import Migration
from phases.doctor.backlog import diagnose_backlog
from phases.doctor.consistency import diagnose_consistency
from phases.doctor.errors import diagnose_errors
from phases.doctor.provider import diagnose_provider
from phases.doctor.queries import diagnose_queries
from phases.doctor.report import Area, DoctorReport, Finding
from phases.operate.provider import provider_versions

__all__ = ["Area", "DoctorReport", "Finding", "doctor"]


def doctor(
    m: Migration,
    *,
    samples: int | None = None,
    queries: int = 20,
    interval: float = 2.0,
    window: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DoctorReport:
    """Diagnose backlog, embedding errors, slow queries and inconsistency from live figures."""
    plan = m.plan
    report = DoctorReport(time.time(), plan.name, plan.environment)
    reader = open_reader(plan, m.services)
    stats = read_stats(plan, m.services, window, now=report.at, reader=reader)
    deployment = reader.scope.deployment
    began = (deployment.since if deployment else None) or reader.scope.since or 0.0
    size = plan.migration.consistency.sample_size if samples is None else samples
    checks: list[tuple[str, str, Callable[[], Area]]] = [
        (
            "backlog",
            "queue backlog or slow processing",
            lambda: diagnose_backlog(m, stats, reader, interval=interval, sleep=sleep),
        ),
        ("errors", "embedding errors", lambda: diagnose_errors(m, since=began)),
        ("queries", "slow queries", lambda: diagnose_queries(m, stats, samples=queries)),
        (
            "consistency",
            "inconsistent results between the systems",
            lambda: diagnose_consistency(m, samples=size),
        ),
    ]
    if provider_versions(plan):
        checks.append(
            (
                "provider",
                "embedding provider: an outage or its rate limits",
                lambda: diagnose_provider(m, stats),
            )
        )
    for key, title, check in checks:
        try:
            area = check()
        except ConstellationError as exc:
            area = Area(key, title)
            area.find(f"cannot diagnose: {exc}", "constellation verify")
            if isinstance(exc, Unreachable):
                report.unreachable.append(str(exc))
        report.areas.append(area)
    for note in stats.notes:
        report.areas[0].notes.append(note)
    return report
