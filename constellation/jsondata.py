"""Results as plain JSON data, one way for every reader: the CLI's ``--json`` and the HTTP
service's answers (``migrate status --json`` and ``GET /migration`` are the same document).

Dataclasses become objects of their fields; a field marked as a point in time
(:data:`constellation.timefields.EPOCH_SECONDS`, ``EPOCH_MS``) becomes ISO 8601 in UTC; a field
marked ``metadata={"json": False}`` is left out; non-finite numbers become null. In free-form
records (the migration state's notes, the journal's snapshots of the state) a key named ``at``
or ending in ``_at`` holds epoch seconds by convention, and becomes ISO 8601 too: one time
format in JSON everywhere.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from constellation.timefields import time_unit


def iso_time(value: float | int | None, unit: str = "s") -> str | None:
    """An epoch time (seconds, or milliseconds with ``unit="ms"``) as ISO 8601 in UTC."""
    if not value or isinstance(value, bool) or not isinstance(value, int | float):
        return None  # "never" (0 or None), as a table shows "-"
    seconds = value / 1000 if unit == "ms" else value
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def is_time_key(key: object) -> bool:
    """A free-form record's key that names a point in time (epoch seconds)."""
    return isinstance(key, str) and (key == "at" or key.endswith("_at"))


def jsonable(value: Any) -> Any:
    """Plain JSON data from dataclasses, paths, enums and the like; fields marked as points
    in time become ISO 8601 strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {}
        for f in dataclasses.fields(value):
            if f.metadata.get("json") is False:  # a field for the code, not for readers
                continue
            unit = time_unit(f)
            raw = getattr(value, f.name)
            data[f.name] = iso_time(raw, unit) if unit else jsonable(raw)
        for name in getattr(type(value), "__json_properties__", ()):
            data[name] = jsonable(getattr(value, name))
        return data
    if isinstance(value, dict):
        return {str(k): iso_time(v) if _epoch(k, v) else jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _epoch(key: object, value: object) -> bool:
    return is_time_key(key) and isinstance(value, int | float) and not isinstance(value, bool)
