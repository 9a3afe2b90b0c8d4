"""What every phase shares: its report, its opening (order check and start fields) and its
conclusion (the exit gate's outcome, journaled).

Every phase command opens the same way (:func:`opening`: the state machine of
:mod:`phases.transitions` decides whether it may start, and the start fields become the first
step), runs its steps (or only describes them with ``dry_run``), then evaluates its exit gate
and records the outcome (:func:`conclude`). Every command can be re-run after a crash:
finished steps report ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from constellation.migration.runtime import Migration
from constellation.migration.state import MigrationState
from phases.consistency import ConsistencyReport
from phases.gates import Gate
from phases.steps import ChangeState, StepResult
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


def command(phase: int) -> str:
    """The journal's name for a phase command."""
    return f"migrate phase {phase}"


def start_fields(state: MigrationState, phase: int) -> dict[str, Any]:
    """The phase fields when ``phase`` starts; a re-run keeps the status it reached."""
    rerun = state.phase == phase and state.status in ("running", "passed")
    return {"phase": phase, "status": state.status if rerun else "running"}


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
    step that sets its start fields and ``changes``, journaled with the reason."""
    state = m.state.read()
    why = require_start(state, phase, force=force, reason=reason)
    fields = {**start_fields(state, phase), **(changes or {})}
    return Opening(state, ChangeState(m.state, command(phase), why, fields))


def conclude(
    m: Migration,
    report: PhaseReport,
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
        report.state = m.state.change(command(report.phase), reason, status=done, notes=notes)
        report.message = passed
    else:
        reason = f"{gate.name} not passed: {gate.failing()}"
        report.state = m.state.change(command(report.phase), reason, notes=notes)
        report.ok = False
        report.message = failed
    return report
