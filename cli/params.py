"""Options shared by several commands, declared once, and option values parsed the same way."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context
from constellation.errors import ConstellationError
from constellation.monitoring.queries import parse_duration


def _json_mode(ctx: typer.Context, value: bool) -> bool:
    # The invocation's one output object learns the mode here, before the command runs, so a
    # command hands its result to ``out.show`` and never tests the flag itself.
    if value:
        context.get(ctx).output.json_mode = True
    return value


#: ``--json`` on every report command: the result as JSON on stdout, nothing else there. The
#: command receives the flag too but needs not look at it: its output object already knows.
Json = Annotated[
    bool,
    typer.Option("--json", help="Print the result as JSON on stdout.", callback=_json_mode),
]
#: ``--dry-run``: the same step objects, described instead of applied
DryRun = Annotated[bool, typer.Option("--dry-run", help="List the steps; change nothing.")]
#: ``--force``: go ahead where a check refuses (the phase order, a rollback in phase 4)
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Go ahead where a check refuses: the phase order (needs --reason), a rollback "
        "in phase 4.",
    ),
]
#: ``--reason``: why, written to the journal with the change
Reason = Annotated[str, typer.Option("--reason", help="Why (journaled).")]


def seconds(value: str | None) -> float | None:
    """A duration option in seconds: ``300``, ``30s``, ``5m``, ``2h`` (None stays None)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConstellationError as exc:
        raise typer.BadParameter(str(exc)) from None
