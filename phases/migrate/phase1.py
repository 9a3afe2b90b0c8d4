"""Phase 1, parallel write: dual writes, every existing note backfilled through the queue.

It starts with the capacity check (notes to embed, this machine's embedding rate, the
backfill time, the index's memory and disk beside what is free): a warning when it is tight,
a refusal without ``--force`` when the index will not fit. Exit gate: the queue drained, the
dead-letter queue empty, consistency between the old and the new system at or above the
plan's bound, and the new index's recall against exact search.
"""

from __future__ import annotations

from collections.abc import Callable

from constellation.ledger.notes import Notes, merged
from constellation.wiring.migration import Migration
from constellation.worker import WorkerStatus
from phases.checks.capacity import CapacityReport, Machine, check_capacity
from phases.checks.consistency import consistency, consistency_note
from phases.checks.gates import phase1_gate
from phases.checks.measured import record, recorded
from phases.checks.recall import check_recall
from phases.migrate.backfill import Backfill
from phases.migrate.drain import Drain, embedded, in_process_worker
from phases.migrate.phase import PhaseReport, Progress, command, conclude, opening
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
    capacity_rate: float | None = None,
    machine: Machine | None = None,
) -> PhaseReport:
    """Phase 1, parallel write: dual writes, backfill every note through the queue, exit gate."""
    opening(m, 1, force=force, reason=reason)  # refused out of order before anything is measured
    capacity = check_capacity(m, rate=capacity_rate, machine=machine)
    refused = _capacity_refusal(m, capacity, dry_run=dry_run, force=force)
    if refused is not None:
        return refused
    if capacity.outcome == "fail":
        reason = f"{reason or 'start phase 1'}; capacity overridden: {capacity.gate().failing()}"
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
    report.measured.append(capacity)
    if dry_run:
        report.message = (
            "would then evaluate the exit gate: queue drained, no dead letters, consistency"
        )
        return report
    report.consistency = consistency(m, on_progress)
    recall = check_recall(m, on_progress=on_progress)
    report.measured.append(recall)
    report.gate = phase1_gate(
        m.services.queue.depth(),
        m.services.dead_letter.depth(),
        report.consistency,
        [recall.as_check()],
    )
    notes = merged(
        Notes(
            consistency=consistency_note(report.consistency),
            step_started_at=m.clock(),  # phase 2's first gate reads comparisons from here
        ),
        recorded(capacity.checks, command(1), m.clock()),
    )
    return conclude(
        m,
        report,
        notes,
        done="passed",
        passed="phase 1 exit gate passed; next: `constellation migrate phase 2`",
        failed="continue with `constellation migrate phase 1 --wait` (it runs or waits for the "
        "worker, then evaluates the gate again)",
    )


def _capacity_refusal(
    m: Migration, capacity: CapacityReport, *, dry_run: bool, force: bool
) -> PhaseReport | None:
    """Phase 1 refuses to start when the index will not fit (nothing changed), unless forced."""
    if capacity.outcome != "fail" or force:
        return None
    gate = capacity.gate()
    report = PhaseReport(1, dry_run, gate=gate, outcome="fail", measured=[capacity])
    if not dry_run:
        report.state = record(m, command(1), gate.checks)
    report.message = (
        f"phase 1 not started, the index will not fit: {gate.failing()}. Free memory or disk "
        "(or give the index a bigger machine), then `constellation migrate phase 1 --wait`; "
        'or start anyway: `constellation migrate phase 1 --wait --force --reason "..."`'
    )
    return report
