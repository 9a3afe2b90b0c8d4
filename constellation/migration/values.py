"""The app's values as the notes source reads them: dates in any form an app stores them
(datetimes, epoch seconds or milliseconds, ISO 8601 text) to epoch milliseconds, and a value
quoted briefly in the reason a row is skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from constellation.errors import UnusableValue


def epoch_ms(value: Any) -> int:
    """Epoch milliseconds from a datetime, epoch seconds or milliseconds, ISO 8601 text, or
    None (0); :class:`UnusableValue` for anything else."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _iso_ms(value)
    elif isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise UnusableValue(f"not a date: {type(value).__name__} {shown(value)}")
    else:
        number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise UnusableValue(f"not a date: {value!r}")
    # Heuristic, documented: values below 10^11 are seconds (that is before 1973 in ms).
    return int(number * 1000) if number < 1e11 else int(number)


def _iso_ms(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UnusableValue(
            f"not a date: {shown(text)} (expected ISO 8601 or epoch time)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def shown(value: object) -> str:
    """A value as a reason quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
