"""Phase 2, read migration: move ``read_traffic`` through the plan's steps behind gates.

Before each step a gate reads the comparison log since the previous step (enough comparisons,
mean overlap, candidate error rate, candidate p95 latency) and, when the plan names a judged
query set, measures the new system's quality against the old. The gate has three outcomes:

- pass: the step is taken;
- fail: read traffic goes back to 0 by itself, journaled with the failing values;
- inconclusive (fewer comparisons than the minimum: a quiet app is no evidence either way):
  the step waits. ``--step`` stops at once and ``--auto`` keeps watching up to the plan's
  ``max_wait``, saying how many comparisons it has; then the command stops and leaves the
  traffic where it is for the operator (exit 3).

``auto`` dwells at each step for the plan's dwell time while evaluating the gate continuously,
so a degraded candidate is caught and traffic returns to 0 by itself. ``traffic set`` gives
manual control; a jump of more than one step needs confirmation.

The phase is a list of step objects like every other: its opening, a :class:`GatedChange` per
traffic step (gate, then change), a :class:`Dwell` after each with ``auto``, and the exit gate
at the last step. ``dry_run`` describes that same list.
"""

from __future__ import annotations

from collections.abc import Callable

from constellation.errors import GateFailed, GateInconclusive, StateError
from constellation.ledger.notes import Notes
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.checks.gates import COMPARISONS, Gate
from phases.checks.measured import record, recorded
from phases.migrate.pause import paused_error
from phases.migrate.phase import PhaseReport, opening
from phases.migrate.phase2_steps import COMMAND, Dwell, GatedChange, Tick, current_gate
from phases.steps import Step, StepResult, run_steps

__all__ = ["COMMAND", "Dwell", "GatedChange", "Tick", "current_gate", "phase2", "phase2_steps"]

#: the resource name of a traffic step's result (what ``on_step`` hears about)
TRAFFIC = "read traffic"
#: without ``traffic.max_wait`` in the plan, ``--auto`` waits this many dwells for evidence
WAIT_DWELLS = 3.0


def _targets(state: MigrationState, steps: list[float], mode: str, to: float | None) -> list[float]:
    done = state.traffic_step
    if mode == "to":
        if to is None or not 0 < to < 1:
            raise StateError("--to needs a share between 0 and 1 (phase 3 sets 1.0)")
        if to <= state.read_traffic:
            raise StateError(
                f"read traffic is already {state.read_traffic:.0%}; use `constellation traffic set` to lower it"
            )
        return [to]
    remaining = [s for i, s in enumerate(steps) if i > done and s > state.read_traffic]
    return remaining if mode == "auto" else remaining[:1]


def phase2_steps(
    m: Migration,
    start: MigrationState,
    targets: list[float],
    *,
    mode: str,
    dwell: float,
    wait: float = 0.0,
    check_every: float | None = None,
    on_tick: Callable[[Tick], None] | None = None,
) -> list[Step]:
    """The traffic steps to ``targets`` (each followed by a dwell with ``auto``), and the exit
    gate when they end at the plan's last step. Each gate waits up to ``wait`` seconds for
    its evidence."""
    config = m.plan.migration.traffic
    steps: list[Step] = []
    index = start.traffic_step
    for target in targets:
        index = config.steps.index(target) if target in config.steps else index
        steps.append(
            GatedChange(
                m,
                TRAFFIC,
                f"read traffic to {target:.0%}",
                f"before {target:.0%}",
                {"read_traffic": target, "traffic_step": index},
                f"{target:.0%} of users on the new system",
                wait=wait,
                check_every=check_every,
                on_tick=on_tick,
                target=target,
            )
        )
        if mode == "auto":
            steps.append(Dwell(m, target, dwell, check_every, on_tick))
    final = targets[-1] if targets else start.read_traffic
    if final >= config.steps[-1] and (mode == "auto" or not targets):
        steps.append(
            GatedChange(
                m,
                "phase 2",
                "phase 2 passed",
                "at the last step",
                {"phase": 2, "status": "passed"},
                "passed",
                # phase 3's checklist reads the comparisons of the last step too
                restarts=False,
                wait=wait,
                check_every=check_every,
                on_tick=on_tick,
            )
        )
    return steps


def max_wait(m: Migration, dwell: float) -> float:
    """How long ``--auto`` watches a gate that lacks its comparisons: the plan's
    ``traffic.max_wait``, else three dwells."""
    configured = m.plan.migration.traffic.max_wait
    return WAIT_DWELLS * dwell if configured is None else configured


def phase2(
    m: Migration,
    *,
    mode: str = "step",
    to: float | None = None,
    dwell: float | None = None,
    check_every: float | None = None,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    on_tick: Callable[[Tick], None] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PhaseReport:
    """Phase 2, read migration: read traffic through the plan's steps, each behind a gate."""
    start = opening(m, 2, force=force, reason=reason)
    if start.state.paused:
        raise paused_error(start.state, "the next traffic step")
    config = m.plan.migration.traffic
    targets = _targets(start.state, list(config.steps), mode, to)
    dwelling = config.dwell if dwell is None else dwell
    steps = [
        start.step,
        *phase2_steps(
            m,
            start.state,
            targets,
            mode=mode,
            dwell=dwelling,
            wait=max_wait(m, dwelling) if mode == "auto" else 0.0,
            check_every=check_every,
            on_tick=on_tick,
        ),
    ]
    report = PhaseReport(2, dry_run)

    def on_result(result: StepResult) -> None:
        report.steps.append(result)
        if on_step and result.resource == TRAFFIC and result.outcome == "updated":
            on_step(result)

    again = "--auto" if mode == "auto" else "--step"
    try:
        run_steps(steps, dry_run=dry_run, on_result=on_result, atomic=False)
    except GateFailed as failed:
        return _abort(m, report, failed)
    except GateInconclusive as undecided:
        return _undecided(m, report, undecided, again)
    # The gate that let the last step through (or the exit gate).
    gates = [s.gate for s in steps if isinstance(s, GatedChange) and s.gate is not None]
    report.gate = gates[-1] if gates else None
    report.state = m.state.read()
    if dry_run:
        return report
    last = steps[-1]
    if isinstance(last, GatedChange) and last.resource == "phase 2":
        report.message = "phase 2 exit gate passed; next: `constellation migrate phase 3`"
        return report
    report.message = (
        f"read traffic {report.state.read_traffic:.0%}; let the app search, then "
        "`constellation migrate phase 2 --step` again"
    )
    return report


def _abort(m: Migration, report: PhaseReport, failed: GateFailed) -> PhaseReport:
    """A failing gate sends every user back to the old system, journaled with the values."""
    gate = failed.gate if isinstance(failed.gate, Gate) else None
    failing = f": {gate.failing()}" if gate else ""
    notes = Notes(step_started_at=m.clock())
    if gate is not None:
        notes.update(recorded(gate.checks, COMMAND, m.clock()))
    report.state = m.state.change(
        COMMAND,
        f"{failed.message}{failing}; read traffic back to 0",
        read_traffic=0.0,
        traffic_step=-1,
        notes=notes,
    )
    report.gate = gate
    report.ok = False
    report.message = (
        f"{failed.message}{failing}; read traffic is back to 0% (journaled). Fix the new "
        "system (`constellation check consistency`, `constellation recover`), then start the "
        "steps again: `constellation migrate phase 2 --step`"
    )
    return report


def _undecided(
    m: Migration, report: PhaseReport, undecided: GateInconclusive, again: str
) -> PhaseReport:
    """A gate without enough evidence leaves the traffic where it is: the operator decides."""
    gate = undecided.gate if isinstance(undecided.gate, Gate) else None
    report.gate = gate
    report.outcome = "inconclusive"
    report.state = record(m, COMMAND, gate.checks) if gate is not None else m.state.read()
    # the comparisons are the evidence the others wait on: name them alone when they lack
    checks = gate.checks if gate else []
    evidence = [c for c in checks if c.name == COMPARISONS and c.outcome == "inconclusive"]
    pending = f": {Gate('', evidence).pending() or gate.pending()}" if gate else ""
    report.message = (
        f"{undecided.message}{pending}; read traffic stays at "
        f"{report.state.read_traffic:.0%}. Let the app search (or lower "
        "migration.traffic.min_comparisons), then continue: "
        f"`constellation migrate phase 2 {again}`"
    )
    return report
