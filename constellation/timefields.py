"""Marks for result fields that hold a point in time, so every output renders them one way.

A dataclass field declared ``at: float = field(metadata=EPOCH_SECONDS)`` (or ``EPOCH_MS`` for
epoch milliseconds, the job contract's unit) keeps its number in the domain; the CLI's JSON
turns it into ISO 8601 and its tables into local time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: the field holds epoch seconds
EPOCH_SECONDS: dict[str, Any] = {"time": "s"}
#: the field holds epoch milliseconds
EPOCH_MS: dict[str, Any] = {"time": "ms"}


def time_unit(f: dataclasses.Field[Any]) -> str | None:
    """``"s"`` or ``"ms"`` for a field marked as a point in time, else None."""
    unit = f.metadata.get("time")
    return unit if isinstance(unit, str) else None
