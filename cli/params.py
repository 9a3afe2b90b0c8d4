"""Option values shared by several commands."""

from __future__ import annotations

import typer

from constellation.errors import ConstellationError
from constellation.monitoring.queries import parse_duration


def seconds(value: str | None) -> float | None:
    """A duration option in seconds: ``300``, ``30s``, ``5m``, ``2h`` (None stays None)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConstellationError as exc:
        raise typer.BadParameter(str(exc)) from None
