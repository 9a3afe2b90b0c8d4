"""``migrate pause`` / ``migrate resume``: hold phase 2 at its traffic step, and let it go on.

A pause keeps read traffic where it is and stops promotions: ``migrate phase 2 --step`` and
``--to`` are refused, and a running ``--auto`` stops at its next look at the state (during a
dwell, or before its next step). Rollbacks and ``traffic set`` (the operator's hand) still
work; a failing gate still sends traffic back to 0. Both are journaled with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation.errors import StateError
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.migrate.transitions import describe

RESUME = "constellation migrate resume --reason ..."


@dataclass(frozen=True)
class PauseReport:
    paused: bool
    changed: bool
    dry_run: bool
    state: MigrationState
    message: str


def paused_error(state: MigrationState, what: str) -> StateError:
    """Why ``what`` (a promotion) may not run while phase 2 is paused."""
    return StateError(
        f"phase 2 is paused at {state.read_traffic:.0%} read traffic: {what} waits",
        f"resume it first: `{RESUME}`",
    )


def _may_hold(state: MigrationState) -> None:
    if state.phase != 2 or state.status != "running":
        raise StateError(
            f"only a running phase 2 can be paused or resumed: the migration is at "
            f"{describe(state)}",
            "see `constellation migrate status`",
        )


def pause(m: Migration, *, reason: str = "", dry_run: bool = False) -> PauseReport:
    """Hold phase 2 at its traffic step: promotions refused, a running --auto stops."""
    return _hold(m, True, reason or "paused by hand", dry_run)


def resume(m: Migration, *, reason: str = "", dry_run: bool = False) -> PauseReport:
    """Let phase 2 take its traffic steps again (each still behind its gate)."""
    return _hold(m, False, reason or "resumed by hand", dry_run)


def _hold(m: Migration, paused: bool, reason: str, dry_run: bool) -> PauseReport:
    verb = "pause" if paused else "resume"
    state = m.state.read()
    _may_hold(state)
    traffic = f"{state.read_traffic:.0%}"
    if dry_run:
        would = (
            f"would hold read traffic at {traffic}: no promotion until resumed, a running "
            "`--auto` stops"
            if paused
            else f"would let phase 2 take its next step from {traffic} (behind its gate)"
        )
        same = state.paused == paused
        message = f"already {verb}d; nothing would change" if same else would
        return PauseReport(state.paused, False, True, state, message)

    def decide(current: MigrationState) -> dict[str, bool] | None:
        _may_hold(current)
        return None if current.paused == paused else {"paused": paused}

    done = m.state.transition(f"migrate {verb}", reason, decide)
    after = done.after
    if not done.changed:
        message = f"already {verb}d; nothing changed"
    elif paused:
        message = (
            f"phase 2 paused at {after.read_traffic:.0%} read traffic: promotions wait, a "
            f"running --auto stops. Resume with `{RESUME}`"
        )
    else:
        message = (
            f"phase 2 resumed at {after.read_traffic:.0%} read traffic; next: "
            "`constellation migrate phase 2 --step` (or --auto)"
        )
    return PauseReport(after.paused, done.changed, False, after, message)
