"""The http backend against a real third-party server: Infinity serving all-MiniLM-L6-v2,
with our fault proxy in front of it where a test needs a fault.

Vectors agree with our own backend; a worker drains through it and a query searches through
it; and each provider behaviour is seen over real sockets: 429 with Retry-After (seconds and
an HTTP date), a 503 burst, an answer slower than the timeout, a 400 for one input, vectors of
the wrong length, a wrong key.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from constellation import records
from constellation.embedders.provider import HttpEmbedder
from constellation.errors import ProviderUnavailable
from constellation.jobs import Job
from constellation.plan import ProviderConfig, load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from constellation.wiring.worker import run_worker
from constellation.worker.control import AlwaysEnabled
from phases.operate.provision import provision
from tests.integration.conftest import FAST, provider_model, send, write_plan
from tests.support.fault_proxy import FaultProxy
from tests.support.infinity import API_KEY, SERVED_MODEL
from tests.support.servers import ManagedServer

pytestmark = pytest.mark.servers

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Python's asyncio runs coroutines on an event loop.",
    "Remember to buy milk, eggs and bread on the way home.",
    "Meeting notes: the migration moves read traffic in three steps.",
    "Vector indexes answer nearest-neighbour queries quickly.",
    "A haiku: old pond, a frog jumps in, the sound of water.",
    "Kubernetes schedules pods onto nodes by their requests.",
    "Le chat dort sur le canapé depuis ce matin.",
]


def job(user: str, note: str, text: str) -> str:
    """A job for model version 3, the provider's."""
    return Job(user, note, text, 1_700_000_000_000, 3).to_body()


def embedder_at(url: str, *, api_key: str = API_KEY, **config: Any) -> HttpEmbedder:
    settings = ProviderConfig(
        url=f"{url}/v1",
        model=SERVED_MODEL,
        api_key=api_key,  # type: ignore[arg-type]
        backoff=0.1,
        max_backoff=0.5,
        **config,
    )
    return HttpEmbedder("all-MiniLM-L6-v2-infinity", provider=settings, dimensions=384)


def test_vectors_agree_with_our_own_backend(infinity: ManagedServer, embedder: Any) -> None:
    remote = embedder_at(infinity.url, texts_per_request=3)
    theirs = remote.embed(TEXTS)
    ours = embedder.embed(TEXTS)
    cosines = np.sum(theirs * ours, axis=1)
    assert cosines.min() >= 0.99, cosines
    assert remote.report().requests == 3  # 8 texts, 3 a request


def test_a_worker_drains_through_infinity_and_a_query_searches_through_it(
    infinity: ManagedServer, infinity_key: str, tmp_path: Path
) -> None:
    plan = load_plan(
        write_plan(tmp_path / "plan.yaml", "local.yaml", FAST, provider_model(infinity.url))
    )
    with Services(plan) as services:
        provision(plan, services)
        send(services.queue, [job(f"u{i % 2}", f"n{i}", t) for i, t in enumerate(TEXTS)])
        summary = run_worker(plan, services, AlwaysEnabled(), drain=True)
        assert summary.stats["processed"] == len(TEXTS)
        assert services.index(3).count() == len(TEXTS)
        with Migration(plan, services) as m:
            hits = m.version_search(3)("a frog jumping into a pond", "u1", 3)
    assert hits and hits[0].note_id == "n5"  # the haiku, user u1's


def _timed(proxy: FaultProxy, remote: HttpEmbedder) -> float:
    started = time.monotonic()
    remote.embed(TEXTS[:2])
    return time.monotonic() - started


@pytest.mark.parametrize("as_date", [False, True])
def test_429_waits_for_retry_after_and_is_no_failure(
    fault_proxy: FaultProxy, as_date: bool
) -> None:
    remote = embedder_at(fault_proxy.url)
    # seconds: two 429s asking for 2 s each; a date (whole seconds, the same for both): the
    # first waits until it (at least 2 s, as it is 3 s away when armed), the second not at all
    fault_proxy.rate_limit(2, retry_after=3.0 if as_date else 2.0, as_date=as_date)
    took = _timed(fault_proxy, remote)
    assert fault_proxy.answered(429) == 2 and fault_proxy.answered(200) == 1
    assert took >= (2.0 if as_date else 3.9)
    report = remote.report()
    assert report.rate_limited == 2 and report.breaker.state == "closed"
    assert remote.session.window.size < 4  # fewer requests in flight for a while


def test_a_503_burst_is_retried_with_backoff(fault_proxy: FaultProxy) -> None:
    remote = embedder_at(fault_proxy.url, failures_to_open=10)
    fault_proxy.fail(4)
    vectors = remote.embed(TEXTS[:2])
    assert vectors.shape == (2, 384)
    assert fault_proxy.answered(503) == 4 and remote.report().breaker.state == "closed"


def test_an_answer_slower_than_the_timeout_is_asked_again(fault_proxy: FaultProxy) -> None:
    remote = embedder_at(fault_proxy.url, timeout=0.5)
    fault_proxy.slow(1, 3.0)
    started = time.monotonic()
    vectors = remote.embed(TEXTS[:2])
    assert vectors.shape == (2, 384)
    assert time.monotonic() - started < 3.0  # not waited out: given up at 0.5 s and retried
    assert "within 0.5s" in (remote.report().last_error or "")


def test_vectors_of_the_wrong_length_are_refused_and_nothing_is_stored(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    fault_proxy.wrong_dimension = True
    remote = embedder_at(fault_proxy.url)
    with pytest.raises(
        ProviderUnavailable, match="answers 768-dimension vectors but the plan says 384"
    ):
        remote.embed(TEXTS[:1])

    plan = load_plan(
        write_plan(tmp_path / "plan.yaml", "local.yaml", FAST, provider_model(fault_proxy.url))
    )
    with Services(plan) as services:
        fault_proxy.wrong_dimension = False
        provision(plan, services)
        fault_proxy.wrong_dimension = True
        send(
            services.queue,
            [job("u", f"n{i}", t) for i, t in enumerate(TEXTS)],
        )
        summary = run_worker(plan, services, AlwaysEnabled(), max_messages=len(TEXTS))
        assert summary.stats["processed"] == 0 and not summary.stats["failed"]
        assert summary.stats["deferred"] == len(TEXTS)
        assert services.index(3).count() == 0
        assert services.queue.depth().total == len(TEXTS)  # all still queued
        assert services.dead_letter.depth().total == 0


def test_a_refused_input_goes_alone_to_the_dead_letter_queue_with_the_reason(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    fault_proxy.refuse_marker = "FORBIDDEN"
    plan = load_plan(
        write_plan(tmp_path / "plan.yaml", "local.yaml", FAST, provider_model(fault_proxy.url))
    )
    texts = [*TEXTS, "this note is FORBIDDEN by the provider"]
    with Services(plan) as services:
        provision(plan, services)
        send(
            services.queue,
            [job("u", f"n{i}", t) for i, t in enumerate(texts)],
        )
        summary = run_worker(plan, services, AlwaysEnabled(), drain=True)
        assert summary.stats["processed"] == len(TEXTS)
        stored = services.index(3).get(
            [records.record_id("u", f"n{i}", 3) for i in range(len(texts))]
        )
        assert len(stored) == len(TEXTS) and records.record_id("u", "n8", 3) not in stored
        (letter,) = services.dead_letter.receive(max_messages=10)
    assert letter.attributes["reason"] == "input_refused"
    assert "input rejected: it contains 'FORBIDDEN'" in letter.attributes["detail"]
    assert letter.attributes["receiveCount"] == "1"


def test_a_wrong_key_stops_everything_and_is_never_shown(infinity: ManagedServer) -> None:
    remote = embedder_at(infinity.url, api_key="sk-wrong-key-987654")
    with pytest.raises(ProviderUnavailable) as caught:
        remote.embed(TEXTS[:1])
    assert caught.value.kind == "key refused"
    assert "401" in str(caught.value) and "sk-wrong" not in str(caught.value)
    assert remote.report().requests == 1
