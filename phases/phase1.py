"""Phase 1, parallel write: dual writes, every existing note backfilled through the queue.

Exit gate: the queue drained, the dead-letter queue empty, consistency between the old and the
new system at or above the plan's bound.
"""

from __future__ import annotations

from collections.abc import Callable

from constellation.migration.runtime import Migration
from constellation.worker import WorkerStatus
from phases.backfill import Backfill
from phases.consistency import consistency, consistency_note
from phases.drain import Drain, embedded, in_process_worker
from phases.gates import phase1_gate
from phases.phase import PhaseReport, Progress, conclude, opening
from phases.steps import Step, StepResult, run_steps


def phase1(
    m: Migration,
    *,
    wait: bool = False,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    on_progress: Progress | None = None,
    on_status: Callable[[WorkerStatus], None] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PhaseReport:
    """Phase 1, parallel write: dual writes, backfill every note through the queue, exit gate."""
    start = opening(
        m, 1, {"write_mode": "dual", "consumer_enabled": True}, force=force, reason=reason
    )
    steps: list[Step] = [
        start.step,
        Backfill(
            m.source,
            m.services.queue,
            m.state,
            start.state.write_versions,
            on_progress,
            m.plan.consumer.max_job_bytes,
        ),
    ]
    if wait:
        # The embedded index takes one writing process: run the worker here. With servers,
        # wait for the workers that are already running.
        runner = in_process_worker(m, on_status, on_progress) if embedded(m) else None
        steps.append(Drain(runner, m.services.queue, sleep=m.sleep))
    report = PhaseReport(
        1, dry_run, run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
    )
    report.skipped = list(m.source.skipped.values())
    if dry_run:
        report.message = (
            "would then evaluate the exit gate: queue drained, no dead letters, consistency"
        )
        return report
    report.consistency = consistency(m, on_progress)
    report.gate = phase1_gate(
        m.services.queue.depth(), m.services.dead_letter.depth(), report.consistency
    )
    notes = {
        "consistency": consistency_note(report.consistency),
        "step_started_at": m.clock(),  # phase 2's first gate reads comparisons from here
    }
    return conclude(
        m,
        report,
        notes,
        done="passed",
        passed="phase 1 exit gate passed; next: `constellation migrate phase 2`",
        failed="phase 1 exit gate not passed yet; re-run `constellation migrate phase 1` "
        "(add --wait to run the worker)",
    )
