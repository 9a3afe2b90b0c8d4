"""Our side of a provider's limits: requests and tokens per minute, pauses it asks for, and
fewer requests in flight for a while after a 429.

The per-minute limits are token buckets that refill continuously and hold at most one second's
worth (at least one request), so requests go out evenly instead of a minute's worth at once,
which providers that count over shorter spans than a minute would refuse. A reservation is
taken before a request is sent and may leave a bucket in debt: the caller waits the debt out.
Tokens are counted before sending from the texts' length (``chars_per_token``), then put right
with what the provider reports in its answer's ``usage``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from constellation.embedders.provider.headers import RateHeaders


class Bucket:
    """A per-minute limit as a token bucket (not thread-safe: :class:`Limiter` locks it)."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now; the seconds to wait before using it (0: at once)."""
        self._refill()
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class Limiter:
    """Requests and tokens per minute, and pauses (``Retry-After``, a limit used up)."""

    def __init__(
        self,
        *,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.requests = Bucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._paused_until = 0.0
        self._lock = threading.Lock()
        #: the last answer's ``x-ratelimit-*`` figures (doctor and verify show the headroom)
        self.last: RateHeaders = RateHeaders()

    def take(self, *, requests: int, tokens: float, deadline: float) -> bool:
        """Wait for the turn of a request of ``tokens`` (``requests`` 0: its request was
        reserved already). False, at once and reserving nothing, when that turn would come
        after ``deadline``."""
        with self._lock:
            now = self.clock()
            waits = [self._paused_until - now]
            if self.requests is not None and requests:
                waits.append(self.requests.reserve(requests))
            if self.tokens is not None and tokens:
                waits.append(self.tokens.reserve(tokens))
            wait = max(0.0, *waits)
            if now + wait > deadline:
                if self.requests is not None and requests:
                    self.requests.give_back(requests)
                if self.tokens is not None and tokens:
                    self.tokens.give_back(tokens)
                return False
        if wait > 0:
            self.sleep(wait)
        return True

    def refund(self, *, requests: int) -> None:
        """Give back a request reserved and not sent."""
        with self._lock:
            if self.requests is not None:
                self.requests.give_back(requests)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's ``Retry-After``, a limit used up)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self.clock())

    def settle(self, estimated: float, counted: int | None, limits: RateHeaders) -> None:
        """After an answer: put the token count right, and pause when the provider says a
        limit is used up until it resets."""
        with self._lock:
            if self.tokens is not None and counted is not None:
                self.tokens.give_back(estimated - counted)  # negative: take the rest
            if limits.sent:
                self.last = limits
        if limits.remaining_requests == 0 and limits.reset_requests:
            self.pause(limits.reset_requests)
        if limits.remaining_tokens == 0 and limits.reset_tokens:
            self.pause(limits.reset_tokens)


class Window:
    """How many requests may be in flight: halved on a 429 (at most once a second), then
    grown back by one after as many successes as it holds."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.size = limit
        self.clock = clock
        self._in_use = 0
        self._successes = 0
        self._shrunk_at = float("-inf")
        self._changed = threading.Condition()

    def acquire(self, timeout: float) -> bool:
        """A slot, waiting up to ``timeout`` seconds for one (False: none came)."""
        end = time.monotonic() + max(0.0, timeout)
        with self._changed:
            while self._in_use >= self.size:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            self._in_use += 1
            return True

    def release(self) -> None:
        with self._changed:
            self._in_use -= 1
            self._changed.notify_all()

    def succeeded(self) -> None:
        with self._changed:
            self._successes += 1
            if self.size < self.limit and self._successes >= self.size:
                self.size += 1
                self._successes = 0
                self._changed.notify_all()

    def shrink(self) -> None:
        """A 429: half as many in flight (one 429 per request in flight must not halve it
        again and again: once a second at most)."""
        with self._changed:
            now = self.clock()
            if now - self._shrunk_at >= 1.0:
                self.size = max(1, self.size // 2)
                self._shrunk_at = now
            self._successes = 0


def limits_bound(
    *,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
    texts_per_request: int,
    tokens_per_text: float,
) -> tuple[float, str] | None:
    """Texts per second our limits allow at most, and which limit sets it (None: no limit):
    full requests at ``requests_per_minute``, or texts of ``tokens_per_text`` tokens at
    ``tokens_per_minute``."""
    bounds = []
    if requests_per_minute:
        bounds.append((requests_per_minute * texts_per_request / 60.0, "requests per minute"))
    if tokens_per_minute:
        bounds.append((tokens_per_minute / max(tokens_per_text, 1e-9) / 60.0, "tokens per minute"))
    return min(bounds) if bounds else None
