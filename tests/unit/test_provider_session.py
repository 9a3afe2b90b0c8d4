"""A provider's semantics, each a behaviour: 429s slow us down, 5xx are retried within the
deadline, an outage opens the breaker, one refused input is found alone, a wrong key or a
wrong dimension stops everything at once (a scripted wire on a fake clock)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from constellation.embedders.provider.session import PROBE_TEXT
from constellation.embedders.provider.wire import (
    Failed,
    InputRefused,
    RateLimited,
    Refused,
    Transient,
)
from constellation.errors import InputsRejected, ProviderUnavailable
from tests.unit.provider_rig import Clock, provider, vector


def test_vectors_come_back_in_order_and_of_unit_length() -> None:
    embedder, _wire, _ = provider()
    vectors = embedder.embed(["a", "bb", "ccc"])
    assert vectors.shape == (3, 4)
    assert np.allclose(vectors, np.stack([vector(t) for t in ("a", "bb", "ccc")]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)


def test_a_429_waits_what_retry_after_asks_and_is_no_failure() -> None:
    answers = iter([RateLimited("429", wait=7.0), None])
    embedder, _wire, clock = provider(lambda texts: next(answers))
    embedder.embed(["a"])
    assert clock.slept == [7.0]
    report = embedder.report()
    assert report.rate_limited == 1 and report.breaker.failures == 0
    assert embedder.session.window.size == 2  # half of requests_in_flight 4, for a while


def test_a_429_without_retry_after_backs_off_and_never_opens_the_breaker() -> None:
    calls = [0]

    def script(texts: Sequence[str]) -> Failed | None:
        calls[0] += 1
        return RateLimited("429") if calls[0] <= 20 else None

    embedder, _, clock = provider(script, failures_to_open=3, deadline=1000, max_backoff=2)
    embedder.embed(["a"])
    assert embedder.session.breaker.closed
    assert all(0.25 <= s <= 2 for s in clock.slept[1:])  # capped backoff, with jitter


def test_5xx_are_retried_with_growing_backoff_and_jitter_within_the_deadline() -> None:
    answers = iter([Transient("503"), Transient("503"), Transient("502"), None])
    embedder, wire, clock = provider(
        lambda texts: next(answers), backoff=1, max_backoff=100, failures_to_open=10
    )
    embedder.embed(["a"])
    assert len(wire.requests) == 4
    first, second, third = clock.slept
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and 2 <= third <= 4


def test_an_outage_opens_the_breaker_and_later_calls_fail_at_once() -> None:
    embedder, wire, _clock = provider(lambda texts: Transient("connection refused"))
    with pytest.raises(ProviderUnavailable) as caught:
        embedder.embed(["a"])
    assert caught.value.kind == "unreachable" and caught.value.component == "embedding provider"
    assert len(wire.requests) == 5  # failures_to_open
    assert embedder.outage() is not None and "connection refused" in embedder.outage()  # type: ignore[operator]
    with pytest.raises(ProviderUnavailable, match="unavailable for"):
        embedder.embed(["b"])
    assert len(wire.requests) == 5  # not asked at all


def test_a_call_that_runs_out_of_its_deadline_opens_the_breaker() -> None:
    embedder, wire, _clock = provider(
        lambda texts: Transient("slow", timeout=True),
        deadline=3,
        backoff=1,
        max_backoff=1,
        failures_to_open=100,
    )
    with pytest.raises(ProviderUnavailable) as caught:
        embedder.embed(["a"])
    assert caught.value.kind == "timeout"
    assert 3 <= len(wire.requests) <= 7
    assert not embedder.session.breaker.closed


def test_a_search_runs_out_of_its_own_shorter_deadline_without_opening_the_breaker() -> None:
    embedder, _wire, clock = provider(
        lambda texts: Transient("503"),
        query_deadline=2,
        backoff=1,
        max_backoff=1,
        failures_to_open=100,
    )
    start = clock.now
    with pytest.raises(ProviderUnavailable):
        embedder.for_queries().embed(["q"])
    assert clock.now - start <= 2.0
    assert embedder.session.breaker.closed  # a search's hurry is not an outage


def test_while_open_the_worker_probes_and_resumes_by_itself() -> None:
    down = threading.Event()
    down.set()
    embedder, wire, clock = provider(
        lambda texts: Transient("503") if down.is_set() else None, probe_interval=5
    )
    with pytest.raises(ProviderUnavailable):
        embedder.embed(["a"])
    assert not embedder.available()  # no probe due yet
    asked = len(wire.requests)
    clock.now += 5
    assert not embedder.available()  # the probe fails: open for another interval
    assert wire.requests[asked:] == [[PROBE_TEXT]]
    down.clear()
    assert not embedder.available()
    clock.now += 5
    assert embedder.available()  # the probe answers: closed
    assert embedder.outage() is None
    assert embedder.embed(["b"]).shape == (1, 4)


@pytest.mark.parametrize(("status_key", "kind"), [(True, "key refused"), (False, "refused")])
def test_a_refused_key_or_request_stops_everything_at_once(status_key: bool, kind: str) -> None:
    embedder, wire, _ = provider(lambda texts: Refused("401 Unauthorized", key=status_key))
    with pytest.raises(ProviderUnavailable) as caught:
        embedder.embed(["a", "b"])
    assert caught.value.kind == kind
    assert len(wire.requests) == 1  # no retry mends a key
    assert not embedder.available()


def test_vectors_of_another_length_are_refused_and_never_returned() -> None:
    embedder, _wire, _ = provider(lambda texts: 8)  # 8 dimensions, the plan says 4
    with pytest.raises(ProviderUnavailable) as caught:
        embedder.embed(["a"])
    assert caught.value.kind == "dimension"
    assert "answers 8-dimension vectors but the plan says 4" in str(caught.value)


def test_one_refused_input_is_found_alone_and_the_rest_get_their_vectors() -> None:
    def script(texts: Sequence[str]) -> Failed | None:
        return InputRefused("400 Bad Request: input too long") if "BAD" in texts else None

    embedder, wire, _ = provider(script, texts_per_request=8)
    texts = [f"t{i}" for i in range(7)] + ["BAD"]
    with pytest.raises(InputsRejected) as caught:
        embedder.embed(texts)
    assert caught.value.rejected == {7: "400 Bad Request: input too long"}
    good = caught.value.vectors[:7]
    assert np.allclose(good, np.stack([vector(t) for t in texts[:7]]))
    assert np.isnan(caught.value.vectors[7]).all()
    assert len(wire.requests) <= 1 + 2 * 3  # halves, not one request per text
    assert embedder.session.breaker.closed


def test_a_provider_refusing_every_text_and_the_probe_is_the_requests_fault() -> None:
    embedder, wire, _ = provider(lambda texts: InputRefused("400: unknown model 'nope'"))
    with pytest.raises(ProviderUnavailable) as caught:
        embedder.embed(["a", "b"])
    assert caught.value.kind == "refused"
    assert [PROBE_TEXT] in wire.requests
    assert not embedder.session.breaker.closed  # nothing rejected: the jobs will wait


def test_calls_of_batches_in_flight_share_full_requests() -> None:
    clock = Clock()
    gate = threading.Event()

    def script(texts: Sequence[str]) -> None:
        gate.wait(5)  # the first request is slow: the other calls pile up meanwhile
        return None

    embedder, wire, _ = provider(script, clock=clock, texts_per_request=10, requests_in_flight=1)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(embedder.embed([f"{i}-{j}" for j in range(4)]))
        )
        for i in range(4)
    ]
    threads[0].start()
    while not wire.requests:
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while sum(1 for t in threads if t.is_alive()) and len(embedder._dispatcher._pending) < 12:
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(results) == 4
    assert [len(r) for r in wire.requests] == [4, 10, 2]  # the 12 waiting went in 2 requests


def test_a_char_limit_cuts_texts_before_they_are_sent() -> None:
    embedder, _, _ = provider(max_input_chars=5)
    assert embedder.truncate(["short", "longer text"]) == [("short", False), ("longe", True)]
    unlimited, _, _ = provider()
    assert unlimited.truncate(["x" * 10_000]) == [("x" * 10_000, False)]
