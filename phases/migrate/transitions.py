"""Which phase may start when: the migration's state machine.

A phase starts only after the previous phase's exit gate passed (status ``passed``), or again
while it runs (every phase command can be re-run safely after a crash). Phase 1 may also start
after a full rollback. ``--force --reason`` overrides the order; the reason is journaled.
"""

from __future__ import annotations

from constellation.errors import StateError
from constellation.ledger.state import MigrationState

NAMES = {1: "parallel write", 2: "read migration", 3: "full cutover", 4: "cleanup"}


def describe(state: MigrationState) -> str:
    if state.phase == 0:
        return "not started"
    held = ", paused" if state.paused else ""
    return f"phase {state.phase} ({NAMES[state.phase]}): {state.status.replace('_', ' ')}{held}"


def may_start(state: MigrationState, phase: int) -> bool:
    """True when ``phase`` may start (or be re-run) from ``state`` without --force."""
    if phase not in NAMES:
        return False
    if state.status == "rolled_back":
        return phase == 1
    if phase == state.phase:
        return state.status != "complete"
    if phase == 1:
        return state.phase == 0
    return state.phase == phase - 1 and state.status == "passed"


def require_start(
    state: MigrationState, phase: int, *, force: bool = False, reason: str = ""
) -> str:
    """Check the order; return the journal reason. Raises :class:`StateError` when refused."""
    if phase not in NAMES:
        raise StateError(f"there is no phase {phase}; phases are 1 to 4")
    if may_start(state, phase):
        return reason or f"start phase {phase} ({NAMES[phase]})"
    if force:
        if not reason.strip():
            raise StateError('--force needs --reason "...": forced transitions are journaled')
        return f"forced from {describe(state)}: {reason}"
    if state.phase == phase and state.status == "complete":
        raise StateError(f"phase {phase} is already complete")
    if state.status == "rolled_back":
        hint = "after a full rollback the migration starts again at phase 1"
    elif phase > state.phase + 1 or state.phase >= phase:
        hint = f"the migration is at {describe(state)}"
    else:
        hint = f"run `constellation migrate phase {state.phase}` until its exit gate passes"
    raise StateError(
        f"phase {phase} cannot start: {describe(state)}",
        f'{hint}, or override with --force --reason "..."',
    )
