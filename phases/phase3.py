"""Phase 3, full cutover: every search on the new system, dual writes kept.

Exit gate, the verification checklist: consistency, the new p95 no worse than the old, the
candidate's error rate, the consumer enabled and keeping up, no dead letters.
"""

from __future__ import annotations

from collections.abc import Callable

from constellation.migration.runtime import Migration
from phases.consistency import consistency, consistency_note
from phases.gates import cutover_checklist
from phases.phase import PhaseReport, Progress, conclude, opening
from phases.steps import StepResult, run_steps


def phase3(
    m: Migration,
    *,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    on_progress: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PhaseReport:
    """Phase 3, full cutover: every search on the new system, dual writes kept; verification."""
    start = opening(m, 3, {"read_traffic": 1.0, "write_mode": "dual"}, force=force, reason=reason)
    report = PhaseReport(
        3, dry_run, run_steps([start.step], dry_run=dry_run, on_result=on_step, atomic=False)
    )
    if dry_run:
        report.message = "would then run the verification checklist"
        return report
    current = m.state.read()
    report.consistency = consistency(m, on_progress)
    traffic = m.plan.migration.traffic
    since = float(current.notes.get("step_started_at", 0.0))
    report.gate = cutover_checklist(
        report.consistency,
        m.comparisons.summary(since),
        traffic,
        current.consumer_enabled,
        m.services.queue.depth(),
        m.services.dead_letter.depth(),
        traffic.latency_tolerance,
    )
    notes = {"consistency": consistency_note(report.consistency)}
    return conclude(
        m,
        report,
        notes,
        done="passed",
        passed="cutover verified; next: `constellation migrate phase 4`",
        failed="verification failed; fix and re-run phase 3, or `constellation rollback quick`",
    )
