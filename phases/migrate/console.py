"""The verbs the browser console shows and runs, handed to the service by ``constellation
serve`` (see :mod:`constellation.api.verbs`): the command line's own functions, so an action
from the page makes the same transitions and journal entries, and is refused with the same
message, as its command."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from constellation.api.verbs import Action, ActionOutcome
from constellation.wiring.migration import Migration
from phases.migrate import model, pause, status
from phases.migrate.phase2 import phase2
from phases.migrate.rollback import rollback_quick
from phases.steps import StepResult

#: each action's command line (what the console's confirmation names)
COMMANDS: dict[Action, str] = {
    "promote": "constellation migrate phase 2 --step",
    "pause": "constellation migrate pause",
    "resume": "constellation migrate resume",
    "abort": "constellation rollback quick",
}


def _changes(steps: Sequence[StepResult]) -> tuple[str, ...]:
    """The steps that changed (or would change) something, one line each."""
    return tuple(
        f"{r.resource}: {r.detail}" for r in steps if r.outcome not in ("unchanged", "checked")
    )


def _would(changes: Sequence[str], then: str) -> str:
    said = "; ".join(changes) if changes else "nothing (it is done already)"
    return f"would change {said}. {then}".strip()


def _promote(m: Migration, reason: str, dry_run: bool) -> ActionOutcome:
    report = phase2(m, mode="step", reason=reason, dry_run=dry_run)
    changes = _changes(report.steps)
    message = report.message
    if dry_run:
        message = _would(
            changes,
            "Only if the gate passes (its checks as shown); a failing gate sends read "
            "traffic back to 0%.",
        )
    return ActionOutcome(
        "promote", COMMANDS["promote"], dry_run, report.ok, report.outcome, message, changes, report
    )


def _hold(verb: Callable[..., pause.PauseReport], action: Action) -> Callable[..., ActionOutcome]:
    def run(m: Migration, reason: str, dry_run: bool) -> ActionOutcome:
        report = verb(m, reason=reason, dry_run=dry_run)
        held = action == "pause"
        moves = report.changed or (dry_run and report.state.paused != held)
        change = (f"migration state: paused {not held} → {held}",) if moves else ()
        return ActionOutcome(
            action, COMMANDS[action], dry_run, True, "pass", report.message, change, report
        )

    return run


def _abort(m: Migration, reason: str, dry_run: bool) -> ActionOutcome:
    report = rollback_quick(m, reason=reason, dry_run=dry_run)
    changes = _changes(report.steps)
    return ActionOutcome(
        "abort", COMMANDS["abort"], dry_run, True, "pass", report.message, changes, report
    )


_RUN: dict[Action, Callable[[Migration, str, bool], ActionOutcome]] = {
    "promote": _promote,
    "pause": _hold(pause.pause, "pause"),
    "resume": _hold(pause.resume, "resume"),
    "abort": _abort,
}


class MigrationVerbs:
    """:class:`constellation.api.verbs.ConsoleVerbs` from the command line's functions."""

    def status(self, m: Migration) -> object:
        """What ``migrate status --json`` prints."""
        return status.status(m)

    def models(self, m: Migration) -> object:
        """What ``model status --json`` prints."""
        return model.status(m)

    def act(self, m: Migration, action: Action, *, reason: str, dry_run: bool) -> ActionOutcome:
        """Run ``action`` through its command's function."""
        return _RUN[action](m, reason, dry_run)
