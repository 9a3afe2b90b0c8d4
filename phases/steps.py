"""Side effects as small step objects that describe, check, apply and undo themselves.

A command builds its list of steps once. ``--dry-run`` describes that same list instead of
applying it, so there is no second code path. :func:`run_steps` looks before it leaps: it checks
every step first and refuses to touch anything if one conflicts, and if an apply fails midway it
undoes what it had created, so nothing is left half-created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from constellation.errors import ConflictError
from constellation.ledger.state import MigrationState, Reason, StateStore

Action = Literal["create", "unchanged", "conflict", "check", "update"]


@dataclass(frozen=True)
class Check:
    """What a step would do, found by looking at the current state."""

    action: Action
    detail: str = ""


class Step(Protocol):
    @property
    def resource(self) -> str:
        """The resource this step is about, e.g. "queue embed-queue"."""
        ...

    def describe(self) -> str:
        """One line: what this step does when applied."""
        ...

    def check(self) -> Check:
        """Look at the current state; change nothing."""
        ...

    def apply(self) -> str:
        """Make the change; return a short detail for the report."""
        ...

    def undo(self) -> None:
        """Reverse :meth:`apply` (only called after a successful apply)."""
        ...


@dataclass(frozen=True)
class StepResult:
    resource: str
    action: Action
    #: "created", "unchanged", "would create", "checked", ...
    outcome: str
    detail: str


def run_steps(
    steps: Sequence[Step],
    *,
    dry_run: bool = False,
    on_result: Callable[[StepResult], None] | None = None,
    atomic: bool = True,
) -> list[StepResult]:
    """Check every step, then apply the needed ones (or only report them with ``dry_run``).

    ``atomic``: if a step fails, undo the ones applied before it (provisioning: nothing is left
    half-created). Resumable commands (the phases, model upgrades) pass False: what was applied
    stays, and running the command again continues where it stopped.
    """
    checks = [(step, step.check()) for step in steps]
    conflicts = [(step, check) for step, check in checks if check.action == "conflict"]
    if conflicts:
        lines = "\n".join(f"  {step.resource}: {check.detail}" for step, check in conflicts)
        raise ConflictError(
            f"{len(conflicts)} existing resource(s) differ from the plan; nothing was changed:\n"
            f"{lines}"
        )
    results: list[StepResult] = []
    applied: list[Step] = []

    def report(result: StepResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    try:
        for step, check in checks:
            if check.action in ("create", "update"):
                if dry_run:
                    report(
                        StepResult(
                            step.resource, check.action, f"would {check.action}", step.describe()
                        )
                    )
                    continue
                detail = step.apply()
                applied.append(step)
                outcome = "created" if check.action == "create" else "updated"
                report(StepResult(step.resource, check.action, outcome, detail))
            else:
                outcome = "checked" if check.action == "check" else "unchanged"
                report(StepResult(step.resource, check.action, outcome, check.detail))
    except BaseException:
        if atomic:
            for step in reversed(applied):
                step.undo()
        raise
    return results


@dataclass
class ChangeState:
    """Change fields of the migration state in one transition (journaled); undo restores them.

    ``decide`` turns the state into the fields to set (``notes``: only the keys it sets), or
    raises to refuse. :meth:`check` calls it on a read of the state, to describe the change;
    :meth:`apply` calls it again inside the transition, on the state as it is written, so a
    command that raced another decides on what it finds, never on what it read before.
    """

    state: StateStore
    command: str
    reason: Reason
    decide: Callable[[MigrationState], Mapping[str, Any]]
    _before: dict[str, Any] = field(default_factory=dict)

    resource = "migration state"

    @classmethod
    def setting(
        cls, state: StateStore, command: str, reason: Reason, changes: Mapping[str, Any]
    ) -> ChangeState:
        """The step that sets ``changes`` whatever the state holds."""
        return cls(state, command, reason, lambda _current: changes)

    def describe(self) -> str:
        return f"set {_describe(self.decide(self.state.read()))}"

    def check(self) -> Check:
        current = self.state.read()
        changes = self.decide(current)
        if _holds(current, changes):
            return Check("unchanged", _describe(changes))
        return Check("update", f"set {_describe(changes)}")

    def apply(self) -> str:
        decided: Mapping[str, Any] = {}

        def decide(current: MigrationState) -> Mapping[str, Any] | None:
            nonlocal decided
            decided = self.decide(current)
            if _holds(current, decided):
                return None  # another command made this very change meanwhile
            self._before = {k: getattr(current, k) for k in decided if k != "notes"}
            if "notes" in decided:
                self._before["notes"] = {k: current.notes.get(k) for k in decided["notes"]}
            return decided

        if not self.state.transition(self.command, self.reason, decide).changed:
            return f"already {_describe(decided)}: another command made this change meanwhile"
        return _describe(decided)

    def undo(self) -> None:
        if self._before:
            self.state.change(self.command, "undone: a later step failed", **self._before)


def _holds(state: MigrationState, changes: Mapping[str, Any]) -> bool:
    """True when ``state`` already has every value ``changes`` sets."""
    notes = changes.get("notes") or {}
    return all(getattr(state, k) == v for k, v in changes.items() if k != "notes") and all(
        state.notes.get(k) == v for k, v in notes.items()
    )


def _describe(changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in changes.items() if k != "notes")
