"""The four phases: parallel write, read migration (see :mod:`phases.traffic`), cutover, cleanup.

Every phase command checks the order (:mod:`phases.transitions`), runs its steps (or only
describes them with ``dry_run``), then evaluates its exit gate and records the outcome in the
journal. Every command can be re-run after a crash: finished steps report ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from constellation.worker import RunSummary, WorkerStatus
from phases.consistency import ConsistencyReport, Search, check_consistency
from phases.context import Migration
from phases.gates import Gate, GateCheck, cutover_checklist, phase1_gate
from phases.migration_steps import ArchiveLegacy, Backfill, ChangeState, Drain, archive_count
from phases.service import run_worker
from phases.state import MigrationState
from phases.steps import Step, StepResult, run_steps
from phases.transitions import require_start

#: progress callback: (what, total or None, advance by)
Progress = Callable[[str, int | None, int], None]


@dataclass
class PhaseReport:
    phase: int
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)
    gate: Gate | None = None
    consistency: ConsistencyReport | None = None
    state: MigrationState | None = None
    #: False when the phase's gate failed (the command exits non-zero)
    ok: bool = True
    message: str = ""


def consistency(m: Migration, on_progress: Progress | None = None) -> ConsistencyReport:
    """The plan's consistency check between the old system and the new index."""
    return consistency_between(m, on_progress=on_progress)


def consistency_between(
    m: Migration,
    *,
    sample_size: int | None = None,
    min_overlap: float | None = None,
    top_k: int | None = None,
    versions: tuple[int, int] | None = None,
    on_progress: Progress | None = None,
) -> ConsistencyReport:
    """Compare old and new search on sampled notes (or two model versions of the new index)."""
    config = m.plan.migration.consistency
    size = config.sample_size if sample_size is None else sample_size
    old: Search = m.old_search
    new: Search = m.new_search
    if versions is not None:
        old, new = m.version_search(versions[0]), m.version_search(versions[1])
    total = min(size, m.source.count())
    return check_consistency(
        m.source,
        old,
        new,
        sample_size=size,
        min_overlap=config.min_overlap if min_overlap is None else min_overlap,
        top_k=config.top_k if top_k is None else top_k,
        on_progress=(lambda n: on_progress("consistency check", total, n)) if on_progress else None,
    )


def consistency_note(report: ConsistencyReport) -> dict[str, object]:
    """What the state keeps of a consistency check (``migrate status`` shows it)."""
    return {
        "mean": report.mean,
        "minimum": report.minimum,
        "checked": report.checked,
        "min_overlap": report.min_overlap,
        "passed": report.passed,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def in_process_worker(
    m: Migration, on_status: Callable[[WorkerStatus], None] | None
) -> Callable[[], RunSummary]:
    """A function that drains the queue with a worker in this process."""

    return partial(
        run_worker,
        m.plan,
        m.services,
        m.state,
        drain=True,
        failures=m.failures,
        on_status=on_status,
    )


def _start(state: MigrationState, phase: int) -> dict[str, object]:
    """The phase fields when ``phase`` starts; a re-run keeps the status it reached."""
    rerun = state.phase == phase and state.status in ("running", "passed")
    return {"phase": phase, "status": state.status if rerun else "running"}


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
    state = m.state.read()
    why = require_start(state, 1, force=force, reason=reason)
    command = "migrate phase 1"
    changes = {**_start(state, 1), "write_mode": "dual", "consumer_enabled": True}
    steps: list[Step] = [
        ChangeState(m.state, command, why, changes),
        Backfill(m.source, m.services.queue, m.state, state.write_versions, on_progress),
    ]
    if wait:
        # The embedded index takes one writing process: run the worker here. With servers,
        # wait for the workers that are already running.
        embedded = m.plan.queue.adapter == "sqlite" and m.plan.index.url is None
        runner = in_process_worker(m, on_status) if embedded else None
        steps.append(Drain(runner, m.services.queue, sleep=m.sleep))
    report = PhaseReport(
        1, dry_run, run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
    )
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
        **m.state.read().notes,
        "consistency": consistency_note(report.consistency),
        "step_started_at": m.clock(),  # phase 2's first gate reads comparisons from here
    }
    return _conclude(
        m,
        report,
        command,
        notes,
        done="passed",
        passed="phase 1 exit gate passed; next: `constellation migrate phase 2`",
        failed="phase 1 exit gate not passed yet; re-run `constellation migrate phase 1` "
        "(add --wait to run the worker)",
    )


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
    state = m.state.read()
    why = require_start(state, 3, force=force, reason=reason)
    command = "migrate phase 3"
    steps: list[Step] = [
        ChangeState(
            m.state,
            command,
            why,
            {**_start(state, 3), "read_traffic": 1.0, "write_mode": "dual"},
        )
    ]
    report = PhaseReport(
        3, dry_run, run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
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
    notes = {**current.notes, "consistency": consistency_note(report.consistency)}
    return _conclude(
        m,
        report,
        command,
        notes,
        done="passed",
        passed="cutover verified; next: `constellation migrate phase 4`",
        failed="verification failed; fix and re-run phase 3, or `constellation rollback quick`",
    )


def phase4(
    m: Migration,
    *,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    on_progress: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PhaseReport:
    """Phase 4, cleanup: writes to the new system only; the legacy index archived and verified."""
    state = m.state.read()
    why = require_start(state, 4, force=force, reason=reason)
    command = "migrate phase 4"
    path = m.plan.data_dir / "archive" / f"{m.plan.legacy.name}.jsonl.gz"
    archive = ArchiveLegacy(m.legacy, path, on_progress)
    steps: list[Step] = [
        ChangeState(
            m.state,
            command,
            why,
            {**_start(state, 4), "write_mode": "new", "read_traffic": 1.0},
        ),
        archive,
    ]
    report = PhaseReport(
        4, dry_run, run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
    )
    if dry_run:
        report.message = "would then verify the archive's count against the legacy index"
        return report
    expected, found = m.legacy.count(), archive_count(path)
    check = GateCheck(
        "archive verified (records)",
        found == expected,
        f"{found:,} in {path.name}",
        f"= {expected:,} in the legacy index",
    )
    report.gate = Gate("phase 4 exit", [check])
    notes = {**m.state.read().notes, "archive": {"path": str(path), "records": found}}
    return _conclude(
        m,
        report,
        command,
        notes,
        done="complete",
        passed=f"migration complete; the legacy index is archived at {path}",
        failed="the archive does not match the legacy index; re-run phase 4",
    )


def _conclude(
    m: Migration,
    report: PhaseReport,
    command: str,
    notes: dict[str, object],
    *,
    done: str,
    passed: str,
    failed: str,
) -> PhaseReport:
    """Journal the exit gate's outcome; the phase reaches ``done`` only when it passed."""
    assert report.gate is not None
    gate = report.gate
    if gate.passed:
        reason = f"{gate.name} passed"
        report.state = m.state.change(command, reason, status=done, notes=notes)
        report.message = passed
    else:
        reason = f"{gate.name} not passed: {gate.failing()}"
        report.state = m.state.change(command, reason, notes=notes)
        report.ok = False
        report.message = failed
    return report
