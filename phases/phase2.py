"""Phase 2, read migration: move ``read_traffic`` through the plan's steps behind gates.

Before each step a gate reads the comparison log since the previous step (enough comparisons,
mean overlap, candidate error rate, candidate p95 latency). A failing gate aborts: read traffic
goes back to 0, journaled with the failing values. ``auto`` dwells at each step for the plan's
dwell time while evaluating the gate continuously (once it has enough comparisons), so a
degraded candidate is caught and traffic returns to 0 by itself. ``traffic set`` gives manual
control; a jump of more than one step needs confirmation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from constellation.errors import StateError
from constellation.migration.runtime import Migration
from constellation.migration.state import MigrationState
from phases.gates import Gate, traffic_gate
from phases.phase import PhaseReport, command, opening
from phases.steps import StepResult

COMMAND = command(2)


@dataclass(frozen=True)
class Tick:
    """Progress of a dwell: where, how long, and the gate as it stands."""

    traffic: float
    elapsed: float
    dwell: float
    gate: Gate


def current_gate(m: Migration, state: MigrationState | None = None) -> Gate:
    """The traffic gate over the comparisons since the current step began."""
    state = state or m.state.read()
    since = float(state.notes.get("step_started_at", 0.0))
    return traffic_gate(m.comparisons.summary(since), m.plan.migration.traffic)


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
    state = start.state
    config = m.plan.migration.traffic
    targets = _targets(state, list(config.steps), mode, to)
    report = PhaseReport(2, dry_run)
    if dry_run:
        for target in targets:
            report.steps.append(
                StepResult(
                    "read traffic",
                    "update",
                    "would update",
                    f"gate, then read_traffic {target:.0%}",
                )
            )
        report.message = (
            "would then evaluate the exit gate" if not targets or mode == "auto" else ""
        )
        return report
    if state.phase != 2:
        state = m.state.change(COMMAND, start.step.reason, **start.step.changes)
    dwell = config.dwell if dwell is None else dwell
    for target in targets:
        gate = current_gate(m, state)
        if not gate.passed:
            return _abort(m, report, gate, f"before {target:.0%}")
        report.gate = gate  # the gate that let this step through
        index = config.steps.index(target) if target in config.steps else state.traffic_step
        state = m.state.change(
            COMMAND,
            f"gate passed ({_summary(gate)}); read traffic to {target:.0%}",
            read_traffic=target,
            traffic_step=index,
            notes={**state.notes, "step_started_at": m.clock()},
        )
        report.steps.append(
            StepResult(
                "read traffic", "update", "updated", f"{target:.0%} of users on the new system"
            )
        )
        if on_step:
            on_step(report.steps[-1])
        if mode == "auto":
            failed = _dwell(m, target, dwell, check_every, on_tick)
            if failed is not None:
                return _abort(m, report, failed, f"during the dwell at {target:.0%}")
    at_last = m.state.read().read_traffic >= config.steps[-1]
    if at_last and (mode == "auto" or not targets):
        gate = current_gate(m)
        report.gate = gate
        if not gate.passed:
            return _abort(m, report, gate, "at the last step")
        report.state = m.state.change(
            COMMAND, f"exit gate passed ({_summary(gate)})", status="passed"
        )
        report.message = "phase 2 exit gate passed; next: `constellation migrate phase 3`"
        return report
    report.state = m.state.read()
    report.message = (
        f"read traffic {report.state.read_traffic:.0%}; let the app search, then "
        "`constellation migrate phase 2 --step` again"
    )
    return report


#: a dwell waits at most this many times its length for the gate's minimum of comparisons
MAX_DWELL_STRETCH = 3.0


def _dwell(
    m: Migration,
    target: float,
    dwell: float,
    check_every: float | None,
    on_tick: Callable[[Tick], None] | None,
) -> Gate | None:
    """Wait at a step for ``dwell`` seconds and until the gate has its minimum of comparisons
    (quiet traffic is no evidence either way; at most ``MAX_DWELL_STRETCH`` times the dwell).
    Returns the gate as soon as it fails with enough comparisons, else None."""
    interval = check_every if check_every is not None else max(0.5, min(60.0, dwell / 20))
    started = m.clock()
    limit = dwell * MAX_DWELL_STRETCH
    while True:
        elapsed = m.clock() - started
        gate = current_gate(m)
        enough = gate.checks[0].passed
        if elapsed >= limit or (elapsed >= dwell and enough):
            return None
        m.sleep(min(interval, max(dwell - elapsed, interval)))
        gate = current_gate(m)
        if on_tick:
            on_tick(Tick(target, m.clock() - started, dwell, gate))
        if gate.checks[0].passed and not gate.passed:
            return gate
        if m.state.read().read_traffic != target:
            raise StateError(
                "read traffic was changed by another command during the dwell",
                "check `constellation migrate status`",
            )


def _abort(m: Migration, report: PhaseReport, gate: Gate, when: str) -> PhaseReport:
    """A failing gate sends every user back to the old system, journaled with the values."""
    state = m.state.read()
    report.state = m.state.change(
        COMMAND,
        f"gate failed {when}: {gate.failing()}; read traffic back to 0",
        read_traffic=0.0,
        traffic_step=-1,
        notes={**state.notes, "step_started_at": m.clock()},
    )
    report.gate = gate
    report.ok = False
    report.message = f"gate failed {when}: read traffic is back to 0% (journaled)"
    return report


def _summary(gate: Gate) -> str:
    return ", ".join(f"{c.name} {c.value}" for c in gate.checks)
