"""Every outside HTTP call has a total time limit (not one per read), and a password in its URL
never reaches a message: the webhook, Prometheus, the shared fetch underneath."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from constellation.deadline import fetch
from constellation.errors import MonitoringError, VectorIndexError
from constellation.monitoring import queries as q
from constellation.monitoring.alerts import AlertChange
from constellation.monitoring.notify import Notifier
from constellation.monitoring.readings import PrometheusReader, Total
from constellation.plan import DEFAULT_ALERTS
from tests.support.http import local_server
from tests.support.servers import free_port
from tests.support.slow_http import dripping_server, silent_server

CHANGE = AlertChange(DEFAULT_ALERTS[-1], "ok", "firing", 5.0, 1_700_000_000.0)
PASSWORD = "s3cr3t-PASSWORD"


def finishes_within(seconds: float, call: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``call`` in a thread; fail the test if it is still running after ``seconds`` (a
    call without a total limit would never come back from a dripping server)."""
    done: list[Any] = []
    started = time.monotonic()

    def run() -> None:
        try:
            done.append(call())
        except Exception as exc:
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds}s: no total time limit"
    return done[0], time.monotonic() - started


def test_a_webhook_that_drips_its_answer_is_given_up_at_the_limit() -> None:
    with dripping_server(every=0.2) as url:
        notifier = Notifier(webhook_url=url + "/hook", timeout=1.0)
        deliveries, took = finishes_within(20, lambda: notifier.notify(CHANGE))
    (delivery,) = deliveries
    assert not delivery.ok and "within 1s" in delivery.detail
    assert took < 10


def test_prometheus_dripping_its_answer_is_given_up_at_the_limit() -> None:
    body = b'HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n{"status": "success", "data": '
    with dripping_server(every=0.3, answer=body) as url:
        source = PrometheusReader(url, timeout=1.0)
        failed, _ = finishes_within(
            20, lambda: source.instant({"x": Total(q.PROCESSED)}, 1_700_000_000.0, 300)
        )
    assert isinstance(failed, MonitoringError) and "within 1s" in str(failed)


def test_a_server_that_never_answers_is_given_up_at_the_limit() -> None:
    with silent_server() as url:
        failed, took = finishes_within(20, lambda: fetch(url, deadline=0.5))
    assert isinstance(failed, TimeoutError) and took < 10


def test_a_password_in_the_prometheus_url_is_sent_as_basic_auth_and_never_shown() -> None:
    answers = {"status": "success", "data": {"resultType": "vector", "result": []}}
    with local_server(lambda _request: (200, answers)) as server:
        url = server.url.replace("http://", f"http://prom:{PASSWORD}@")
        PrometheusReader(url).instant({"x": Total(q.PROCESSED)}, 1_700_000_000.0, 300)
        assert PrometheusReader(url).description == f"Prometheus at {url.replace(PASSWORD, '***')}"
    (request, *_) = server.requests
    assert request.headers["Authorization"] == "Basic cHJvbTpzM2NyM3QtUEFTU1dPUkQ="
    unreachable = f"http://prom:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(MonitoringError) as refused:
        PrometheusReader(unreachable, timeout=2).instant({"x": Total(q.PROCESSED)}, 0.0, 300)
    assert PASSWORD not in str(refused.value) and "prom:***@127.0.0.1" in str(refused.value)


def test_a_webhook_token_never_reaches_the_delivery_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://hooks:{PASSWORD}@127.0.0.1:{free_port()}/hook?token={PASSWORD}"
    (delivery,) = Notifier(webhook_url=url, timeout=2).notify(CHANGE)
    assert not delivery.ok
    assert PASSWORD not in delivery.detail
    assert PASSWORD not in caplog.text


def test_a_chroma_server_that_never_answers_is_given_up_at_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from constellation.index import chroma

    monkeypatch.setattr(chroma, "CONNECT_DEADLINE", 1.0, raising=False)
    with silent_server() as url:
        failed, took = finishes_within(30, lambda: chroma.ChromaStore(url=url))
    assert isinstance(failed, VectorIndexError) and "unreachable" in str(failed), failed
    assert took < 15


def test_a_password_in_the_chroma_url_is_never_shown() -> None:
    from constellation.index.chroma import ChromaStore

    with pytest.raises(VectorIndexError) as refused:
        ChromaStore(url=f"http://admin:{PASSWORD}@127.0.0.1:{free_port()}")
    assert PASSWORD not in str(refused.value)
    assert "Chroma server at http://admin:***@127.0.0.1" in str(refused.value)


def test_an_sqs_endpoint_that_never_answers_is_given_up_within_its_attempts() -> None:
    from constellation.errors import QueueError
    from constellation.queues.aws import SqsTimeouts
    from constellation.queues.sqs import SqsBroker

    with silent_server() as url:
        broker = SqsBroker(url, "us-east-1", timeouts=SqsTimeouts(connect=1, read=1, attempts=2))
        failed, took = finishes_within(60, lambda: broker.inspect("embed-queue"))
    assert isinstance(failed, QueueError) and "cannot reach SQS" in str(failed), failed
    assert took < 20  # two attempts of one second each, and one backoff
