"""Phase 2's step objects: a change behind the traffic gate, and the dwell between steps.

:class:`GatedChange` evaluates the gate over the comparisons since the last step, waits (up to
``wait``) while it cannot decide, then measures the plan's quality bound and makes the change
in one transition. :class:`Dwell` watches the gate for the dwell's length. A gate fails only
with its minimum of comparisons: before that its comparison checks are inconclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from constellation.errors import GateFailed, GateInconclusive, StateError
from constellation.ledger.notes import step_started_at
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.checks.gates import Gate, GateCheck, traffic_gate
from phases.checks.measured import recorded
from phases.checks.quality import quality_checks
from phases.migrate.pause import paused_error
from phases.migrate.phase import command
from phases.migrate.transitions import describe
from phases.steps import Check

COMMAND = command(2)


@dataclass(frozen=True)
class Tick:
    """Progress of a dwell, or of a gate waiting for evidence: where, how long, the gate."""

    traffic: float
    elapsed: float
    #: the dwell's length, or how long the gate waits at most
    dwell: float
    gate: Gate
    #: True while a gate waits for enough comparisons before ``target``
    waiting: bool = False
    target: float | None = None

    @property
    def comparisons(self) -> str:
        return self.gate.checks[0].value


def current_gate(m: Migration, state: MigrationState | None = None) -> Gate:
    """The traffic gate over the comparisons since the current step began."""
    state = state or m.state.read()
    since = step_started_at(state.notes)
    return traffic_gate(m.comparisons.summary(since), m.plan.migration.traffic)


def _summary(gate: Gate) -> str:
    return ", ".join(f"{c.name} {c.value}" for c in gate.checks)


def _poll(seconds: float) -> float:
    return max(0.5, min(60.0, seconds / 20))


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
    step, waiting up to ``wait`` seconds while it cannot decide; :class:`GateFailed` when it
    fails, :class:`GateInconclusive` when it still cannot decide; else make the change in one
    transition, refused if another command moved the read traffic meanwhile."""

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
    #: how long to keep watching a gate that cannot decide yet (0: not at all)
    wait: float = 0.0
    check_every: float | None = None
    on_tick: Callable[[Tick], None] | None = None
    target: float | None = None
    gate: Gate | None = None
    #: the quality checks measured for this gate (once, after the comparisons decided)
    measured: list[GateCheck] = field(default_factory=list)

    def describe(self) -> str:
        return f"gate, then {self.what}"

    def check(self) -> Check:
        state = self.m.state.read()
        if all(getattr(state, k) == v for k, v in self.changes.items()):
            return Check("unchanged", self.what)
        return Check("update", self.describe())

    def apply(self) -> str:
        m = self.m
        seen = m.state.read()
        gate = self._evidence(seen)
        if gate.outcome != "inconclusive":
            self.measured = quality_checks(m)
            gate = gate.with_checks(self.measured)
        self.gate = gate
        if gate.outcome == "fail":
            raise GateFailed(f"gate failed {self.when}", gate=gate)
        if gate.outcome == "inconclusive":
            raise GateInconclusive(f"gate {self.when} could not decide", gate=gate)

        def decide(state: MigrationState) -> dict[str, Any]:
            if state.paused:
                raise paused_error(state, self.what)
            if state.phase != 2 or state.status != "running" or state.write_mode == "old":
                # A rollback (or another phase) came before the gate was even read: the
                # gate stood on that state, so it cannot tell, and traffic must not move.
                raise StateError(
                    "the migration state changed underneath this command: phase 2 is no "
                    f"longer running (now {describe(state)})",
                    "nothing was changed; see `constellation migrate status` before you run "
                    "it again",
                )
            moved = moved_since(seen, state)
            if moved:
                raise StateError(
                    f"the migration state changed underneath this command ({moved} changed "
                    f"by another command while its gate was evaluated; now {describe(state)})",
                    "nothing was changed; run it again",
                )
            notes = recorded(gate.checks, COMMAND, m.clock())
            if self.restarts:
                notes["step_started_at"] = m.clock()
            return {**self.changes, "notes": notes}

        m.state.transition(COMMAND, f"gate passed ({_summary(gate)}); {self.what}", decide)
        return self.done

    def _evidence(self, seen: MigrationState) -> Gate:
        """The gate, watched for up to ``wait`` seconds while it lacks its comparisons."""
        m = self.m
        gate = current_gate(m, seen)
        started = m.clock()
        interval = self.check_every if self.check_every is not None else _poll(self.wait)
        while gate.outcome == "inconclusive" and m.clock() - started < self.wait:
            if self.on_tick:
                tick = Tick(
                    seen.read_traffic, m.clock() - started, self.wait, gate, True, self.target
                )
                self.on_tick(tick)
            m.sleep(min(interval, max(self.wait - (m.clock() - started), 0.01)))
            now = m.state.read()
            if now.paused:
                raise paused_error(now, self.what)
            if (now.read_traffic, now.traffic_step) != (seen.read_traffic, seen.traffic_step):
                raise StateError(
                    "read traffic was changed by another command while its gate waited",
                    "check `constellation migrate status`",
                )
            gate = current_gate(m, seen)
        return gate

    def undo(self) -> None:
        pass  # phase 2 runs its steps without undo: a failing gate sends traffic back to 0


@dataclass
class Dwell:
    """Wait at a step for ``dwell`` seconds watching the gate: :class:`GateFailed` as soon as
    it fails (it cannot fail before it has its minimum of comparisons). Evidence that is still
    missing at the end is the next gate's to wait for."""

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
        interval = self.check_every if self.check_every is not None else _poll(dwell)
        started = m.clock()
        while True:
            elapsed = m.clock() - started
            if elapsed >= dwell:
                gate = current_gate(m)
                return f"{elapsed:,.0f}s, gate {gate.outcome} ({gate.checks[0].value} comparisons)"
            m.sleep(min(interval, max(dwell - elapsed, 0.01)))
            gate = current_gate(m)
            if self.on_tick:
                self.on_tick(Tick(self.target, m.clock() - started, dwell, gate))
            if gate.outcome == "fail":
                raise GateFailed(f"gate failed during the dwell at {self.target:.0%}", gate=gate)
            now = m.state.read()
            if now.paused:
                raise paused_error(now, f"the dwell at {self.target:.0%} and every step after it")
            if now.read_traffic != self.target:
                raise StateError(
                    "read traffic was changed by another command during the dwell",
                    "check `constellation migrate status`",
                )

    def undo(self) -> None:
        pass
