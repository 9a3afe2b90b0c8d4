"""The circuit breaker in front of an embedding provider.

**Closed**: requests go out. ``failures_to_open`` failed requests in a row (out of reach, 5xx,
too slow), a batch that ran out of its deadline, or an answer no retry can mend (the key
refused, vectors of another length) **open** it: nothing is sent, every call fails at once
with the reason, and a worker stops receiving. After ``probe_interval`` one caller (the
worker's probe, or the next search) is let through as a trial (**half-open**); its success
closes the breaker, its failure opens it for another interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class BreakerState:
    state: State
    #: why it opened (None while closed)
    reason: str | None
    #: the error kind (see :class:`~constellation.errors.ProviderUnavailable`)
    kind: str | None
    #: monotonic seconds since it opened (None while closed)
    open_for: float | None
    #: failed requests in a row
    failures: int


class Breaker:
    """Thread-safe; ``clock`` is injected for tests."""

    def __init__(
        self,
        *,
        failures_to_open: int,
        probe_interval: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.probe_interval = probe_interval
        self.clock = clock
        self.on_change = on_change
        self._state: State = "closed"
        self._failures = 0
        self._reason: str | None = None
        self._kind: str | None = None
        self._opened_at = 0.0
        self._tried_at = 0.0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def admit(self) -> bool:
        """May a request go out now? While open, the first caller after ``probe_interval``
        becomes the trial (and must report :meth:`succeeded` or :meth:`failed`)."""
        with self._lock:
            if self._state == "closed":
                return True
            if self._state == "open" and self.clock() - self._tried_at >= self.probe_interval:
                self._state = "half-open"
                self._tried_at = self.clock()
                return True
            return False

    def probe_due(self) -> bool:
        """Open, and a trial may go out now."""
        with self._lock:
            return self._state == "open" and self.clock() - self._tried_at >= self.probe_interval

    def succeeded(self) -> None:
        with self._lock:
            changed = self._state != "closed"
            self._state, self._failures, self._reason, self._kind = "closed", 0, None, None
        if changed:
            self._notify()

    def failed(self, reason: str, kind: str, *, trip: bool = False) -> bool:
        """A failed request (``trip``: one that opens the breaker by itself). True when the
        breaker is open after it."""
        with self._lock:
            self._failures += 1
            opens = trip or self._state == "half-open" or self._failures >= self.failures_to_open
            if not opens:
                return self._state != "closed"
            was_open = self._state != "closed"
            if not was_open:
                self._opened_at = self.clock()
            self._state, self._reason, self._kind = "open", reason, kind
            self._tried_at = self.clock()
        if not was_open:
            self._notify()
        return True

    def snapshot(self) -> BreakerState:
        with self._lock:
            open_for = None if self._state == "closed" else self.clock() - self._opened_at
            return BreakerState(self._state, self._reason, self._kind, open_for, self._failures)

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self.snapshot())
