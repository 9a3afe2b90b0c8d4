"""Requests to one provider with its semantics: limits, retries, the breaker, bad inputs.

* 429: wait what ``Retry-After`` asks (or a backoff), with fewer requests in flight for a
  while; never a failure of the texts sent, and never a step towards opening the breaker.
* 5xx, out of reach, too slow: retried with exponential backoff and jitter, within the call's
  deadline; each one counts towards opening the breaker.
* 400/413/422 for several texts: the request is split in halves until the refused texts are
  found alone; each gets the provider's reason, the others their vectors. When a small text we
  know to be fine is refused too, the fault is the request, not the texts: the breaker opens.
* 401/403, another 4xx, vectors of the wrong length: no retry mends these; the breaker opens.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from constellation.embedders.provider.breaker import Breaker, BreakerState
from constellation.embedders.provider.headers import RateHeaders
from constellation.embedders.provider.limits import Limiter, Window
from constellation.embedders.provider.wire import (
    Answer,
    InputRefused,
    RateLimited,
    Transient,
    Wire,
)
from constellation.errors import ProviderUnavailable
from constellation.plan.provider import ProviderConfig

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("constellation.provider")

#: what a probe embeds: short, plain, refused by no provider
PROBE_TEXT = "constellation provider probe"


@dataclass(frozen=True)
class ProviderReport:
    """What we know of a provider from its recent answers (verify, doctor, stats)."""

    url: str
    model: str
    breaker: BreakerState
    requests: int
    rate_limited: int
    #: median and slowest of the last answers, milliseconds (None: none yet)
    latency_ms: float | None
    slowest_ms: float | None
    #: texts per second over the recent answers' own time (None: too few)
    texts_per_second: float | None
    limits: RateHeaders
    requests_per_minute: int | None
    tokens_per_minute: int | None
    last_error: str | None


class ProviderSession:
    """One provider endpoint, shared by the worker's and the searches' embedders."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        model: str,
        dimensions: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wire: Wire | None = None,
        rng: random.Random | None = None,
        plan_field: str = "models.<version>",
    ) -> None:
        self.config = config
        #: where the plan sets this provider, for hints ("models.3")
        self.plan_field = plan_field
        self.dimensions = dimensions
        self.clock = clock
        self.sleep = sleep
        self.wire = wire or Wire(
            config, model=model, dimensions=dimensions, connections=config.requests_in_flight + 2
        )
        self.limiter = Limiter(
            requests_per_minute=config.requests_per_minute,
            tokens_per_minute=config.tokens_per_minute,
            clock=clock,
            sleep=sleep,
        )
        self.window = Window(config.requests_in_flight, clock)
        self.breaker = Breaker(
            failures_to_open=config.failures_to_open,
            probe_interval=config.probe_interval,
            clock=clock,
            on_change=self._log_change,
        )
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._answers: deque[tuple[float, int, float]] = deque(maxlen=64)
        self._requests = 0
        self._rate_limited = 0
        self._last_error: str | None = None

    # one request, retried ---------------------------------------------------------------------
    def request(
        self,
        texts: Sequence[str],
        deadline: float,
        *,
        trip_on_deadline: bool = True,
        prepaid: bool = False,
    ) -> np.ndarray | InputRefused:
        """The vectors of ``texts`` in one request, retried until the monotonic ``deadline``,
        or the provider's refusal of these texts (:class:`InputRefused`).

        Raises :class:`ProviderUnavailable`. ``prepaid``: the first attempt's request was
        reserved already (the dispatcher waits for its turn before it takes the texts, to fill
        each request). ``trip_on_deadline``: running out of time opens the breaker (the
        worker's deadline; a search's is its own hurry, not an outage)."""
        attempt = 0
        last, last_kind = "no answer in time", "rate limited"
        estimate = sum(len(t) for t in texts) / self.config.chars_per_token
        while True:
            if not self.breaker.admit():
                raise self._open_error()
            requests = 0 if prepaid and attempt == 0 else 1
            if not self.limiter.take(requests=requests, tokens=estimate, deadline=deadline):
                raise self._ran_out(last, last_kind, trip_on_deadline)
            if not self.window.acquire(max(0.0, deadline - self.clock())):
                raise self._ran_out(last, last_kind, trip_on_deadline)
            try:
                outcome = self.wire.post(texts, timeout=max(0.05, deadline - self.clock()))
            finally:
                self.window.release()
            backoff = 0.0
            if isinstance(outcome, Answer):
                return self._answered(texts, outcome, estimate)
            self._count(error=outcome.reason, rate_limited=isinstance(outcome, RateLimited))
            if isinstance(outcome, RateLimited):
                self.limiter.settle(estimate, None, outcome.limits)
                self.window.shrink()
                self.breaker.succeeded()  # it answered: out of turn, but it is there
                wait = outcome.wait if outcome.wait is not None else self._backoff(attempt)
                self.limiter.pause(wait)
                last, last_kind = outcome.reason, "rate limited"
            elif isinstance(outcome, Transient):
                last, last_kind = outcome.reason, "timeout" if outcome.timeout else "unreachable"
                if self.breaker.failed(outcome.reason, last_kind):
                    raise ProviderUnavailable(
                        f"the embedding provider is unavailable: {outcome.reason}",
                        _HINT,
                        kind=last_kind,
                    )
                backoff = self._backoff(attempt)
            elif isinstance(outcome, InputRefused):
                self.breaker.succeeded()
                return outcome
            else:
                kind = "key refused" if outcome.key else "refused"
                self.breaker.failed(outcome.reason, kind, trip=True)
                raise ProviderUnavailable(
                    f"the embedding provider refused the request: {outcome.reason}",
                    f"check the API key the plan reads from the environment "
                    f"({self.plan_field}.provider.api_key)"
                    if outcome.key
                    else f"check {self.plan_field}.provider in the plan",
                    kind=kind,
                )
            self._sleep_until(backoff, deadline)  # after the slot is free for others
            attempt += 1
            if self.clock() >= deadline:
                raise self._ran_out(last, last_kind, trip_on_deadline)

    def _answered(self, texts: Sequence[str], answer: Answer, estimate: float) -> np.ndarray:
        """An answer's vectors, once their length is the plan's (else the breaker opens)."""
        self.limiter.settle(estimate, answer.tokens, answer.limits)
        width = answer.vectors.shape[1]
        if width != self.dimensions:
            reason = (
                f"{self.wire.where} answers {width}-dimension vectors but the plan says "
                f"{self.dimensions}"
            )
            self._count(error=reason)
            self.breaker.failed(reason, "dimension", trip=True)
            raise ProviderUnavailable(
                reason,
                f"fix {self.plan_field}.dimensions (or the provider's model); nothing was stored",
                kind="dimension",
            )
        self._count(answered=(len(texts), answer.seconds))
        self.breaker.succeeded()
        self.window.succeeded()
        return answer.vectors

    def probe(self) -> bool:
        """One small request, once (the breaker's trial while it is open): did it answer?"""
        try:
            answer = self.request(
                [PROBE_TEXT], self.clock() + self.config.timeout, trip_on_deadline=False
            )
        except ProviderUnavailable:
            return False
        return not isinstance(answer, InputRefused)

    # bookkeeping ------------------------------------------------------------------------------
    def _count(
        self,
        *,
        rate_limited: bool = False,
        error: str | None = None,
        answered: tuple[int, float] | None = None,
    ) -> None:
        with self._lock:
            self._requests += 1
            self._rate_limited += rate_limited
            if error is not None:
                self._last_error = error
            if answered is not None:
                self._answers.append((self.clock(), *answered))

    def report(self) -> ProviderReport:
        with self._lock:
            answers = list(self._answers)
            requests, limited, error = self._requests, self._rate_limited, self._last_error
        latencies = sorted(seconds for _, _, seconds in answers)
        rate = None
        if len(answers) >= 2:
            span = answers[-1][0] - answers[0][0] + answers[0][2]
            rate = sum(texts for _, texts, _ in answers) / span if span > 0 else None
        return ProviderReport(
            url=self.wire.where,
            model=self.wire.model,
            breaker=self.breaker.snapshot(),
            requests=requests,
            rate_limited=limited,
            latency_ms=latencies[len(latencies) // 2] * 1000 if latencies else None,
            slowest_ms=latencies[-1] * 1000 if latencies else None,
            texts_per_second=rate,
            limits=self.limiter.last,
            requests_per_minute=self.config.requests_per_minute,
            tokens_per_minute=self.config.tokens_per_minute,
            last_error=error,
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of ``backoff * 2**attempt``
        (capped), so that workers failing together do not come back together."""
        cap = min(self.config.max_backoff, self.config.backoff * 2**attempt)
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def _sleep_until(self, seconds: float, deadline: float) -> None:
        wait = min(seconds, deadline - self.clock())
        if wait > 0:
            self.sleep(wait)

    def _open_error(self) -> ProviderUnavailable:
        state = self.breaker.snapshot()
        since = f" for {state.open_for:.0f}s" if state.open_for is not None else ""
        return ProviderUnavailable(
            f"the embedding provider at {self.wire.where} is unavailable{since}: {state.reason}",
            _HINT,
            kind=state.kind or "unreachable",
        )

    def _ran_out(self, reason: str, kind: str, trip: bool) -> ProviderUnavailable:
        if trip:
            self.breaker.failed(reason, kind, trip=True)
        return ProviderUnavailable(
            f"the embedding provider did not serve the request in time: {reason}",
            _HINT,
            kind=kind,
        )

    def _log_change(self, state: BreakerState) -> None:
        # At info: a command that only asks once (verify, query) reports the error itself; a
        # worker says at warning that it stops receiving (constellation.worker.runner).
        if state.state == "closed":
            log.info("embedding provider %s answers again", self.wire.where)
        else:
            log.info(
                "embedding provider %s unavailable (%s): %s",
                self.wire.where,
                state.kind,
                state.reason,
                extra={"event": "provider_unavailable", "kind": state.kind},
            )

    def close(self) -> None:
        self.wire.close()


_HINT = (
    "the jobs stay on the queue and the worker resumes by itself once a probe answers; "
    "`constellation verify` checks the provider"
)
