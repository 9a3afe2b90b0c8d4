"""``migrate status``: the state, the live gate of the current phase, every check's last
measurement and outcome, and the journal's tail."""

from __future__ import annotations

from dataclasses import dataclass, field

from constellation.ledger.journal import JournalEntry
from constellation.ledger.notes import step_started_at
from constellation.ledger.state import MigrationState
from constellation.timefields import EPOCH_SECONDS
from constellation.wiring.migration import Migration
from phases.checks.consistency import ConsistencyReport
from phases.checks.gates import Gate, GateCheck, cutover_checklist, phase1_gate
from phases.checks.measured import RecordedCheck, last_checks
from phases.migrate.pause import RESUME
from phases.migrate.phase2 import current_gate
from phases.migrate.transitions import describe


@dataclass(frozen=True)
class Timeline:
    """When the phase and the traffic step began, the plan's steps, the dwell and its rest."""

    phase_started_at: float | None = field(metadata=EPOCH_SECONDS)
    step_started_at: float | None = field(metadata=EPOCH_SECONDS)
    #: the plan's read-traffic steps (phase 2), and the one reached (-1 before the first)
    steps: list[float]
    step: int
    dwell_seconds: float
    #: phase 2 before its last step: seconds of the dwell still to go at the current step
    dwell_left_seconds: float | None


@dataclass(frozen=True)
class MigrationStatus:
    plan: str
    environment: str
    summary: str
    state: MigrationState
    gate: Gate | None
    next_step: str
    journal: list[JournalEntry]
    #: every check's last measurement and outcome (recall, quality, capacity, the gates')
    checks: list[RecordedCheck]
    timeline: Timeline | None = None


def _stored_consistency(state: MigrationState) -> ConsistencyReport | None:
    """The last consistency check the state recorded (status does not re-run it: it is slow)."""
    note = state.notes.get("consistency")
    if not isinstance(note, dict):
        return None
    report = ConsistencyReport(
        sample_size=int(note.get("checked") or 0), min_overlap=float(note["min_overlap"]), top_k=0
    )
    report.checked = int(note.get("checked") or 0)
    report.mean = note.get("mean")
    report.minimum = note.get("minimum")
    return report


def _stored(state: MigrationState, prefix: str) -> list[GateCheck]:
    """The checks whose name starts with ``prefix`` as last recorded (slow ones: recall,
    quality), for the live gate of a phase that has them."""
    return [
        GateCheck(c.name, c.outcome, c.value, c.bound, c.dry_run)  # type: ignore[arg-type]
        for c in last_checks(state.notes)
        if c.name.startswith(prefix) and c.outcome in ("pass", "fail", "inconclusive")
    ]


#: how far back the journal is read for the current phase's start
PHASE_START_LOOKBACK = 200


def timeline(m: Migration, state: MigrationState) -> Timeline:
    """The phase's start (its last change of phase in the journal), the step's, the dwell."""
    traffic = m.plan.migration.traffic
    phase_started = next(
        (
            e.at
            for e in reversed(m.state.journal(PHASE_START_LOOKBACK))
            if e.before.get("phase") != e.after.get("phase")
        ),
        None,
    )
    step_started = state.notes.get("step_started_at")
    since = float(step_started) if isinstance(step_started, int | float) else None
    left: float | None = None
    if state.phase == 2 and state.status == "running" and since is not None:
        left = max(0.0, traffic.dwell - (m.clock() - since))
    return Timeline(
        phase_started, since, list(traffic.steps), state.traffic_step, traffic.dwell, left
    )


def status(m: Migration, *, journal_tail: int = 10) -> MigrationStatus:
    """Show the migration state, the gates of the current phase with live values, the journal."""
    state = m.state.read()
    gate: Gate | None = None
    next_step = ""
    queue, dead = m.services.queue, m.services.dead_letter
    if state.status == "rolled_back":
        next_step = "constellation migrate phase 1 (starts the migration again)"
    elif state.phase == 0:
        next_step = "constellation migrate phase 1"
    elif state.phase == 1:
        gate = phase1_gate(
            queue.depth(), dead.depth(), _stored_consistency(state), _stored(state, "recall@")
        )
        next_step = (
            "constellation migrate phase 2"
            if state.status == "passed"
            else "constellation migrate phase 1 --wait"
        )
    elif state.phase == 2:
        gate = current_gate(m, state)
        next_step = (
            "constellation migrate phase 3"
            if state.status == "passed"
            else f"{RESUME} (phase 2 is paused)"
            if state.paused
            else "constellation migrate phase 2 --step (or --auto)"
        )
    elif state.phase == 3:
        traffic = m.plan.migration.traffic
        since = step_started_at(state.notes)
        gate = cutover_checklist(
            _stored_consistency(state),
            m.comparisons.summary(since),
            traffic,
            state.consumer_enabled,
            queue.depth(),
            dead.depth(),
            traffic.latency_tolerance,
            [*_stored(state, "recall@"), *_stored(state, "quality (")],
        )
        next_step = (
            "constellation migrate phase 4"
            if state.status == "passed"
            else "constellation migrate phase 3"
        )
    else:
        next_step = (
            "nothing: the migration is complete"
            if state.status == "complete"
            else "constellation migrate phase 4"
        )
    return MigrationStatus(
        m.plan.name,
        m.plan.environment,
        describe(state),
        state,
        gate,
        next_step,
        m.state.journal(journal_tail),
        last_checks(state.notes),
        timeline(m, state),
    )
