"""The operator's verbs the console shows and runs, as the service receives them.

They live in phases/ (``migrate status``, ``model status``, ``migrate phase 2 --step``,
``migrate pause``, ``rollback quick``), a floor this package may not import: ``constellation
serve`` hands them in (:class:`ConsoleVerbs`), so the console runs the very functions and
transitions the command line runs, and journals the same entries. A service started without
them (``uvicorn --factory constellation.api:app_from_env``) serves the console's service
figures and answers its migration endpoints with 501.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from constellation.wiring.migration import Migration

#: what the console may do to the migration, by write token only
Action = Literal["promote", "pause", "resume", "abort"]
ACTIONS: tuple[Action, ...] = ("promote", "pause", "resume", "abort")


@dataclass(frozen=True)
class ActionOutcome:
    """What an action did (or, as a dry run, would do), in the CLI's words."""

    action: Action
    #: the command line that does the same: "constellation rollback quick"
    command: str
    dry_run: bool
    #: True when it did what was asked (a dry run: when it may be done)
    ok: bool
    #: the gate's outcome or "pass"; "fail"/"inconclusive" when a gate stood in the way
    outcome: str
    #: the CLI's message: what changed, or what would change, or why not
    message: str
    #: each step that changed (or would change) something, one line each
    changes: tuple[str, ...] = ()
    #: the verb's own report, as its ``--json`` prints it
    report: object = None


class ConsoleVerbs(Protocol):
    """The migration's verbs, as the operator's folder defines them, for one serving process."""

    def status(self, m: Migration) -> object:
        """What ``migrate status --json`` prints."""
        ...

    def models(self, m: Migration) -> object:
        """What ``model status --json`` prints."""
        ...

    def act(self, m: Migration, action: Action, *, reason: str, dry_run: bool) -> ActionOutcome:
        """Run ``action`` as its command runs (raises the command's refusal, a
        :class:`~constellation.errors.StateError`, when the state forbids it)."""
        ...
