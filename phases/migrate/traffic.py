"""Manual control of the read-traffic share (``traffic show`` / ``traffic set``).

Phase 2 moves the share through the plan's steps behind gates; this is the operator's hand on
the same field, journaled. A jump of more than one step needs confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constellation.errors import ConfirmationNeeded, StateError
from constellation.ledger.notes import Notes
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.checks.gates import Gate
from phases.migrate.phase2 import current_gate


@dataclass(frozen=True)
class TrafficReport:
    read_traffic: float
    step: int
    steps: list[float]
    gate: Gate | None
    changed: bool = False


def show(m: Migration) -> TrafficReport:
    """The read-traffic share, the step reached, and the gate for the next step."""
    state = m.state.read()
    gate = current_gate(m, state) if state.write_mode == "dual" else None
    return TrafficReport(
        state.read_traffic, state.traffic_step, list(m.plan.migration.traffic.steps), gate
    )


def set_traffic(
    m: Migration, share: float, *, yes: bool = False, reason: str = ""
) -> TrafficReport:
    """Set the read-traffic share by hand (journaled); more than one step up needs ``yes``."""
    if not 0.0 <= share <= 1.0:
        raise StateError(f"traffic must be between 0 and 1, got {share}")
    plan_steps = list(m.plan.migration.traffic.steps)
    index = max((i for i, s in enumerate(plan_steps) if s <= share), default=-1)

    def decide(state: MigrationState) -> dict[str, Any]:
        if share > 0 and state.write_mode == "old":
            raise StateError(
                "the new system gets no writes yet (write mode old)",
                "start with `constellation migrate phase 1`",
            )
        jumped = sum(1 for s in [0.0, *plan_steps, 1.0] if state.read_traffic < s <= share)
        if jumped > 1 and not yes:
            raise ConfirmationNeeded(
                f"{state.read_traffic:.0%} → {share:.0%} skips {jumped - 1} step(s) of the plan",
                "confirm with --yes",
            )
        return {
            "read_traffic": share,
            "traffic_step": index,
            "notes": Notes(step_started_at=m.clock()),
        }

    def why(state: MigrationState) -> str:
        return reason or f"manual: {state.read_traffic:.0%} → {share:.0%}"

    m.state.transition("traffic set", why, decide)
    return TrafficReport(share, index, plan_steps, None, changed=True)
