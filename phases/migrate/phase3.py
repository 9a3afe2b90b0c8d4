"""Phase 3, full cutover: every search on the new system, dual writes kept.

Exit gate, the verification checklist: consistency, the new p95 no worse than the old, the
candidate's error rate, the consumer enabled and keeping up, no dead letters, the new index's
recall against exact search and (with a judged query set in the plan) the new system's quality
no worse than the old's.
"""

from __future__ import annotations

from collections.abc import Callable

from constellation.ledger.notes import Notes, step_started_at
from constellation.wiring.migration import Migration
from phases.checks.consistency import consistency, consistency_note
from phases.checks.gates import cutover_checklist
from phases.checks.quality import plan_quality
from phases.checks.recall import check_recall
from phases.migrate.phase import PhaseReport, Progress, conclude, opening
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
    recall = check_recall(m, on_progress=on_progress)
    quality = plan_quality(m)
    report.measured += [recall] if quality is None else [recall, quality]
    traffic = m.plan.migration.traffic
    since = step_started_at(current.notes)
    report.gate = cutover_checklist(
        report.consistency,
        m.comparisons.summary(since),
        traffic,
        current.consumer_enabled,
        m.services.queue.depth(),
        m.services.dead_letter.depth(),
        traffic.latency_tolerance,
        [recall.as_check()] if quality is None else [recall.as_check(), quality.as_check()],
    )
    notes = Notes(consistency=consistency_note(report.consistency))
    return conclude(
        m,
        report,
        notes,
        done="passed",
        passed="cutover verified; next: `constellation migrate phase 4`",
        failed="fix what failed and continue with `constellation migrate phase 3`, or send "
        "every search back to the old system: `constellation rollback quick`",
    )
