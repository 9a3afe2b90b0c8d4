"""Phase 2, read migration: move ``read_traffic`` through the plan's steps behind gates.

Before each step a gate reads the comparison log since the previous step (enough comparisons,
mean overlap, candidate error rate, candidate p95 latency). A failing gate aborts: read traffic
goes back to 0, journaled with the failing values. ``auto`` dwells at each step for the plan's
dwell time while evaluating the gate continuously (once it has enough comparisons), so a
degraded candidate is caught and traffic returns to 0 by itself. ``traffic set`` gives manual
control; a jump of more than one step needs confirmation.

The phase is a list of step objects like every other: its opening, a :class:`GatedChange` per
traffic step (gate, then change), a :class:`Dwell` after each with ``auto``, and the exit gate
at the last step. ``dry_run`` describes that same list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from constellation.errors import GateFailed, StateError
from constellation.migration.runtime import Migration
from constellation.migration.state import MigrationState
from phases.gates import Gate, traffic_gate
from phases.phase import PhaseReport, command, opening
from phases.steps import Check, Step, StepResult, run_steps
from phases.transitions import describe

COMMAND = command(2)
#: the resource name of a traffic step's result (what ``on_step`` hears about)
TRAFFIC = "read traffic"


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


def _summary(gate: Gate) -> str:
    return ", ".join(f"{c.name} {c.value}" for c in gate.checks)


#: what a traffic gate's verdict stands on: had any of these moved while the gate was read
#: (a rollback leaves read traffic at 0, where the first step started, but not the rest)
GATED_FIELDS = ("phase", "status", "write_mode", "read_traffic", "traffic_step", "consumer_enabled")


def moved_since(seen: MigrationState, now: MigrationState) -> str:
    """The gated fields (and the gate's comparison window) that differ; empty when none."""
    moved = [f for f in GATED_FIELDS if getattr(seen, f) != getattr(now, f)]
    if seen.notes.get("step_started_at") != now.notes.get("step_started_at"):
        moved.append("the gate's comparison window")
    return ", ".join(moved)


@dataclass
class GatedChange:
    """A change behind the traffic gate: evaluate the gate over the comparisons since the last
    step (:class:`GateFailed` when it fails), then make the change in one transition, refused
    if another command moved the read traffic while the gate was being evaluated."""

    m: Migration
    resource: str
    #: what the change does, for the journal and the report: "read traffic to 20%"
    what: str
    #: when the gate is evaluated, for the abort's message: "before 20%"
    when: str
    changes: dict[str, Any]
    #: the report's detail once applied
    done: str
    #: whether the next gate reads only the comparisons made after this change
    restarts: bool = True
    gate: Gate | None = None

    def describe(self) -> str:
        return f"gate, then {self.what}"

    def check(self) -> Check:
        state = self.m.state.read()
        if all(getattr(state, k) == v for k, v in self.changes.items()):
            return Check("unchanged", self.what)
        return Check("update", self.describe())

    def apply(self) -> str:
        seen = self.m.state.read()
        self.gate = gate = current_gate(self.m, seen)
        if not gate.passed:
            raise GateFailed(f"gate failed {self.when}", gate=gate)

        def decide(state: MigrationState) -> dict[str, Any]:
            moved = moved_since(seen, state)
            if moved:
                raise StateError(
                    f"the migration state changed underneath this command ({moved} changed "
                    f"by another command while its gate was evaluated; now {describe(state)})",
                    "nothing was changed; run it again",
                )
            if not self.restarts:
                return self.changes
            return {**self.changes, "notes": {"step_started_at": self.m.clock()}}

        self.m.state.transition(COMMAND, f"gate passed ({_summary(gate)}); {self.what}", decide)
        return self.done

    def undo(self) -> None:
        pass  # phase 2 runs its steps without undo: a failing gate sends traffic back to 0


#: a dwell waits at most this many times its length for the gate's minimum of comparisons
MAX_DWELL_STRETCH = 3.0


@dataclass
class Dwell:
    """Wait at a step for ``dwell`` seconds and until the gate has its minimum of comparisons
    (quiet traffic is no evidence either way; at most ``MAX_DWELL_STRETCH`` times the dwell),
    watching the gate: :class:`GateFailed` as soon as it fails with enough comparisons."""

    m: Migration
    target: float
    dwell: float
    check_every: float | None = None
    on_tick: Callable[[Tick], None] | None = None

    @property
    def resource(self) -> str:
        return f"dwell at {self.target:.0%}"

    def describe(self) -> str:
        return f"dwell {self.dwell:g}s, watching the gate"

    def check(self) -> Check:
        return Check("update", self.describe())

    def apply(self) -> str:
        m, dwell = self.m, self.dwell
        every = self.check_every
        interval = every if every is not None else max(0.5, min(60.0, dwell / 20))
        started = m.clock()
        while True:
            elapsed = m.clock() - started
            gate = current_gate(m)
            if elapsed >= dwell * MAX_DWELL_STRETCH or (elapsed >= dwell and gate.checks[0].passed):
                return f"{elapsed:,.0f}s, the gate held ({gate.checks[0].value} comparisons)"
            m.sleep(min(interval, max(dwell - elapsed, interval)))
            gate = current_gate(m)
            if self.on_tick:
                self.on_tick(Tick(self.target, m.clock() - started, dwell, gate))
            if gate.checks[0].passed and not gate.passed:
                raise GateFailed(f"gate failed during the dwell at {self.target:.0%}", gate=gate)
            if m.state.read().read_traffic != self.target:
                raise StateError(
                    "read traffic was changed by another command during the dwell",
                    "check `constellation migrate status`",
                )

    def undo(self) -> None:
        pass


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
    check_every: float | None = None,
    on_tick: Callable[[Tick], None] | None = None,
) -> list[Step]:
    """The traffic steps to ``targets`` (each followed by a dwell with ``auto``), and the exit
    gate when they end at the plan's last step."""
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
            )
        )
    return steps


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
    config = m.plan.migration.traffic
    targets = _targets(start.state, list(config.steps), mode, to)
    steps = [
        start.step,
        *phase2_steps(
            m,
            start.state,
            targets,
            mode=mode,
            dwell=config.dwell if dwell is None else dwell,
            check_every=check_every,
            on_tick=on_tick,
        ),
    ]
    report = PhaseReport(2, dry_run)

    def record(result: StepResult) -> None:
        report.steps.append(result)
        if on_step and result.resource == TRAFFIC and result.outcome == "updated":
            on_step(result)

    try:
        run_steps(steps, dry_run=dry_run, on_result=record, atomic=False)
    except GateFailed as failed:
        return _abort(m, report, failed)
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
    report.state = m.state.change(
        COMMAND,
        f"{failed.message}{failing}; read traffic back to 0",
        read_traffic=0.0,
        traffic_step=-1,
        notes={"step_started_at": m.clock()},
    )
    report.gate = gate
    report.ok = False
    report.message = f"{failed.message}: read traffic is back to 0% (journaled)"
    return report
