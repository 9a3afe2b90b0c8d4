"""Our side of a provider's limits: per-minute buckets, pauses, the in-flight window, and the
circuit breaker (fake clocks: nothing here sleeps)."""

from __future__ import annotations

import pytest

from constellation.embedders.provider.breaker import Breaker
from constellation.embedders.provider.headers import RateHeaders
from constellation.embedders.provider.limits import Limiter, Window
from tests.unit.provider_rig import Clock


def test_requests_per_minute_go_out_evenly_not_in_a_burst() -> None:
    clock = Clock()
    limiter = Limiter(
        requests_per_minute=120, tokens_per_minute=None, clock=clock, sleep=clock.sleep
    )
    start = clock.now
    for _ in range(10):
        limiter.take(requests=1, tokens=0, deadline=clock.now + 60)
    # 2 a second, with at most one second's worth (2) at once: 10 requests take 4 seconds
    assert clock.now - start == pytest.approx(4.0)


def test_tokens_per_minute_are_put_right_with_what_the_provider_counted() -> None:
    clock = Clock()
    limiter = Limiter(
        requests_per_minute=None, tokens_per_minute=600, clock=clock, sleep=clock.sleep
    )
    limiter.take(requests=1, tokens=10, deadline=clock.now + 60)  # the bucket's 10
    limiter.settle(10, 40, RateHeaders())  # it counted 40: 30 more are owed
    start = clock.now
    limiter.take(requests=1, tokens=10, deadline=clock.now + 60)
    assert clock.now - start == pytest.approx(4.0)  # (30 owed + 10) at 10 tokens a second


def test_a_turn_past_the_deadline_is_refused_and_reserves_nothing() -> None:
    clock = Clock()
    limiter = Limiter(
        requests_per_minute=60, tokens_per_minute=None, clock=clock, sleep=clock.sleep
    )
    limiter.take(requests=1, tokens=0, deadline=clock.now + 60)
    assert not limiter.take(requests=1, tokens=0, deadline=clock.now + 0.5)
    limiter.take(requests=1, tokens=0, deadline=clock.now + 60)
    assert clock.slept == [pytest.approx(1.0)]  # the refused turn took nothing


def test_pauses_from_retry_after_and_from_a_used_up_limit() -> None:
    clock = Clock()
    limiter = Limiter(
        requests_per_minute=None, tokens_per_minute=None, clock=clock, sleep=clock.sleep
    )
    limiter.pause(3)
    limiter.take(requests=1, tokens=0, deadline=clock.now + 60)
    assert clock.slept == [3.0]
    limiter.settle(0, None, RateHeaders(limit_requests=60, remaining_requests=0, reset_requests=2))
    limiter.take(requests=1, tokens=0, deadline=clock.now + 60)
    assert clock.slept == [3.0, 2.0]
    assert limiter.last.limit_requests == 60


def test_the_window_halves_on_a_429_at_most_once_a_second_and_grows_back() -> None:
    clock = Clock()
    window = Window(8, clock)
    window.shrink()
    window.shrink()  # a second 429 of the same moment
    assert window.size == 4
    clock.now += 1
    window.shrink()
    assert window.size == 2
    for _ in range(2):
        window.succeeded()
    assert window.size == 3
    for _ in range(3 + 4 + 5 + 6):
        window.succeeded()
    assert window.size == 7  # one more per window's worth of successes, never past the limit
    for _ in range(100):
        window.succeeded()
    assert window.size == 8


def test_a_full_window_refuses_a_slot_after_its_timeout() -> None:
    window = Window(1)
    assert window.acquire(0)
    assert not window.acquire(0.01)
    window.release()
    assert window.acquire(0)


def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    clock = Clock()
    changes: list[str] = []
    breaker = Breaker(
        failures_to_open=3,
        probe_interval=5,
        clock=clock,
        on_change=lambda s: changes.append(s.state),
    )
    breaker.failed("503", "unreachable")
    breaker.succeeded()  # a success in between: the count starts over
    breaker.failed("503", "unreachable")
    breaker.failed("503", "unreachable")
    assert breaker.admit()
    breaker.failed("503", "unreachable")
    assert not breaker.admit() and not breaker.probe_due()
    clock.now += 5
    assert breaker.probe_due()
    assert breaker.admit()  # the trial
    assert not breaker.admit()  # and only one
    breaker.failed("still 503", "unreachable")
    assert breaker.snapshot().state == "open" and breaker.snapshot().reason == "still 503"
    clock.now += 5
    assert breaker.admit()
    breaker.succeeded()
    assert breaker.closed and breaker.admit()
    assert changes == ["open", "closed"]  # said once each way, not on every failed probe


def test_a_trip_opens_at_once() -> None:
    breaker = Breaker(failures_to_open=100, probe_interval=5, clock=Clock())
    breaker.failed("key refused", "key refused", trip=True)
    state = breaker.snapshot()
    assert (state.state, state.kind, state.open_for) == ("open", "key refused", 0.0)
