"""What a provider's answer says about its limits: ``Retry-After`` and ``x-ratelimit-*``.

``Retry-After`` is seconds or an HTTP date (RFC 9110); Azure OpenAI also sends
``retry-after-ms``. OpenAI and Azure OpenAI send, with every answer, their limits, what is left
of them and when they reset (``x-ratelimit-remaining-requests: 59``,
``x-ratelimit-reset-requests: 1s``, ``x-ratelimit-reset-tokens: 6m0s``); other providers send
none of these, and then only our own limits and a 429 slow us down.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

_SPAN = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def span_seconds(text: str) -> float | None:
    """Seconds from ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s`` or a bare number (None: neither)."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _SPAN.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait before asking again, if the answer says (``retry-after-ms`` first)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = span_seconds(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = span_seconds(value)
    if seconds is not None:
        return seconds
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class RateHeaders:
    """One answer's ``x-ratelimit-*`` figures (None: not sent)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    @property
    def sent(self) -> bool:
        return any(v is not None for v in vars(self).values())

    def headroom(self) -> str | None:
        """``58 of 60 requests, 9,800 of 10,000 tokens left`` (None when none were sent)."""
        parts = []
        for left, limit, what in (
            (self.remaining_requests, self.limit_requests, "requests"),
            (self.remaining_tokens, self.limit_tokens, "tokens"),
        ):
            if left is not None:
                of = f" of {limit:,}" if limit is not None else ""
                parts.append(f"{left:,}{of} {what}")
        return f"{', '.join(parts)} left" if parts else None


def rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    """The ``x-ratelimit-*`` figures of an answer's headers (names in any case)."""

    def number(name: str) -> int | None:
        value = headers.get(f"x-ratelimit-{name}")
        try:
            return None if value is None else int(float(value))
        except ValueError:
            return None

    def reset(name: str) -> float | None:
        value = headers.get(f"x-ratelimit-reset-{name}")
        return None if value is None else span_seconds(value)

    return RateHeaders(
        limit_requests=number("limit-requests"),
        remaining_requests=number("remaining-requests"),
        reset_requests=reset("requests"),
        limit_tokens=number("limit-tokens"),
        remaining_tokens=number("remaining-tokens"),
        reset_tokens=reset("tokens"),
    )
