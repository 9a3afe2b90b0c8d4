"""Side effects as small step objects that describe, check, apply and undo themselves.

A command builds its list of steps once. ``--dry-run`` describes that same list instead of
applying it, so there is no second code path. :func:`run_steps` looks before it leaps: it checks
every step first and refuses to touch anything if one conflicts, and if an apply fails midway it
undoes what it had created, so nothing is left half-created.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from constellation.errors import ConflictError
from constellation.migration.state import StateStore

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
    """Set fields of the migration state (journaled); undo restores the previous values."""

    state: StateStore
    command: str
    reason: str
    changes: dict[str, Any]
    _before: dict[str, Any] = field(default_factory=dict)

    resource = "migration state"

    def _describe_changes(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.changes.items() if k != "notes")

    def describe(self) -> str:
        return f"set {self._describe_changes()}"

    def check(self) -> Check:
        current = self.state.read()
        if all(getattr(current, k) == v for k, v in self.changes.items()):
            return Check("unchanged", self._describe_changes())
        return Check("update", self.describe())

    def apply(self) -> str:
        current = self.state.read()
        self._before = {k: getattr(current, k) for k in self.changes}
        self.state.change(self.command, self.reason, **self.changes)
        return self._describe_changes()

    def undo(self) -> None:
        if self._before:
            self.state.change(self.command, "undone: a later step failed", **self._before)
