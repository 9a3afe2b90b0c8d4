"""What every phase shares: its report, its opening (order check and start fields) and its
conclusion (the exit gate's outcome, journaled).

Every phase command opens the same way (:func:`opening`: the state machine of
:mod:`phases.migrate.transitions` decides whether it may start, and the start fields become the first
step), runs its steps (or only describes them with ``dry_run``), then evaluates its exit gate
and records the outcome (:func:`conclude`). Every command can be re-run after a crash:
finished steps report ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from constellation.errors import StateError
from constellation.ledger.notes import Notes, merged
from constellation.ledger.state import MigrationState
from constellation.migration.source import SkippedNote
from constellation.wiring.migration import Migration
from phases.checks.consistency import ConsistencyReport
from phases.checks.gates import Gate, Outcome
from phases.checks.measured import recorded
from phases.migrate.transitions import describe, require_start
from phases.steps import ChangeState, StepResult

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
    #: the command's outcome: its gate's, or ``fail`` when a step was refused (exit 0, 1 or 3)
    outcome: Outcome = "pass"
    message: str = ""
    #: rows of the notes source that are not usable notes, skipped (phase 1)
    skipped: list[SkippedNote] = field(default_factory=list)
    #: the other checks measured on the way (recall, quality, capacity), for the report
    measured: list[Any] = field(default_factory=list)

    __json_properties__ = ("ok",)

    @property
    def ok(self) -> bool:
        """True when the phase did what it was asked (its gate passed)."""
        return self.outcome == "pass"

    @ok.setter
    def ok(self, value: bool) -> None:
        self.outcome = "pass" if value else "fail"


def command(phase: int) -> str:
    """The journal's name for a phase command."""
    return f"migrate phase {phase}"


def start_fields(state: MigrationState, phase: int) -> dict[str, Any]:
    """The phase fields when ``phase`` starts; a re-run keeps the status it reached."""
    rerun = state.phase == phase and state.status in ("running", "passed")
    if rerun:
        return {"phase": phase, "status": state.status}
    fields: dict[str, Any] = {"phase": phase, "status": "running"}
    if state.paused:  # a pause held the phase 2 that ran before (ended by a full rollback)
        fields["paused"] = False
    return fields


@dataclass(frozen=True)
class Opening:
    """A phase that may start: the state it starts from and the step that starts it."""

    state: MigrationState
    step: ChangeState


def opening(
    m: Migration,
    phase: int,
    changes: dict[str, Any] | None = None,
    *,
    force: bool = False,
    reason: str = "",
) -> Opening:
    """Check that ``phase`` may start (raises :class:`StateError` when refused) and build the
    step that sets its start fields and ``changes``, journaled with the reason. The step checks
    the order again on the state it writes: another command may have moved it meanwhile."""
    state = m.state.read()
    require_start(state, phase, force=force, reason=reason)

    def why(current: MigrationState) -> str:
        return require_start(current, phase, force=force, reason=reason)

    def decide(current: MigrationState) -> dict[str, Any]:
        why(current)
        return {**start_fields(current, phase), **(changes or {})}

    return Opening(state, ChangeState(m.state, command(phase), why, decide))


def conclude(
    m: Migration,
    report: PhaseReport,
    notes: Notes,
    *,
    done: str,
    passed: str,
    failed: str,
) -> PhaseReport:
    """Journal the exit gate's outcome and set the ``notes`` keys; the phase reaches ``done``
    only when it passed, and only if it is still the phase running (a rollback may have come
    while the gate was evaluated: then nothing is recorded and :class:`StateError` says so)."""
    assert report.gate is not None
    gate = report.gate

    def decide(current: MigrationState) -> dict[str, Any]:
        if current.phase != report.phase or current.status not in ("running", "passed"):
            raise StateError(
                f"phase {report.phase} was changed by another command while its gate was "
                f"evaluated: the migration is at {describe(current)}",
                "nothing was recorded; see `constellation migrate status`",
            )
        return {"status": done, "notes": notes} if gate.passed else {"notes": notes}

    # the phase's own checks (phase 1's capacity) and its gate's, together
    notes = merged(notes, recorded(gate.checks, command(report.phase), m.clock()))
    if gate.passed:
        reason = f"{gate.name} passed"
        report.message = passed
    else:
        reason = f"{gate.name} {gate.outcome}: {gate.explain()}"
        report.outcome = gate.outcome
        report.message = f"{gate.name} {gate.outcome}: {gate.explain()}; {failed}"
    report.state = m.state.transition(command(report.phase), reason, decide).after
    return report
