"""``constellation serve`` under load and faults, on SQS (a moto server) and a Chroma server of
this module's own, so stopping them disturbs no other test. The service runs without a worker:
what it sends stays on the queue, where the test reads it exactly.

In order: all-or-nothing ``/embed`` and the body limits, the in-flight bound, the queue, the
index and the state store each failing (a 503 naming it, then recovery), and last SIGTERM
during a stream of ``/embed`` calls.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from constellation.plan import Plan, load_plan
from constellation.services import Services
from phases.operate.provision import CheckModel, provision_steps
from phases.steps import run_steps
from tests.integration.conftest import FAST, receive_all, unique_names, write_plan
from tests.support import servers
from tests.support.serve import (
    TOKEN_ENV,
    TOKENS_SECTION,
    WRITE_TOKEN,
    ServeProcess,
    finish_request,
    partial_request,
)

pytestmark = [pytest.mark.servers, pytest.mark.model]

LIMITS = {
    "service": {
        **TOKENS_SECTION,
        "max_in_flight": 2,
        "max_body_bytes": 4096,
        "header_timeout": "2s",
        "body_timeout": "60s",  # the SIGTERM test holds a body back across the stop
    },
    "consumer": {"max_job_bytes": 1024},
    "migration": {"traffic": {"state_refresh": "0.2s"}},
}


@dataclass
class Served:
    plan: Plan
    serve: ServeProcess
    moto: servers.ManagedServer
    chroma: servers.ManagedServer

    def provision(self) -> None:
        with Services(self.plan) as services:
            steps = provision_steps(self.plan, services)
            run_steps([s for s in steps if not isinstance(s, CheckModel)])

    def queued(self) -> list[dict[str, Any]]:
        """Every job on the embed queue, taken off it (SQS allows one purge a minute)."""
        with Services(self.plan) as services:
            messages = receive_all(services.queue)
            if messages:
                services.queue.delete_batch([m.receipt for m in messages])
            return [json.loads(m.body) for m in messages]

    def purge(self) -> None:
        self.queued()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serve-faults")
    moto = servers.moto_server(folder)
    chroma = servers.chroma_server(folder / "chroma", folder)
    moto.start()
    chroma.start()
    env = {"SQS_ENDPOINT_URL": moto.url, "CHROMA_URL": chroma.url, **TOKEN_ENV}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        path = write_plan(folder / "staging.yaml", "staging.yaml", unique_names(), FAST, LIMITS)
        plan = load_plan(path)
        serve = ServeProcess(path, logs=folder / "logs", env=env)
        result = Served(plan, serve, moto, chroma)
        result.provision()
        try:
            serve.wait_ready()
            yield result
        finally:
            serve.stop()
            moto.stop()
            chroma.stop()


def job(note: str, text: str = "a note", user: str = "fault-user") -> dict[str, Any]:
    return {
        "userId": user,
        "noteId": note,
        "text": text,
        "created": 1_700_000_000_000,
        "version": 1,
    }


def test_embed_sends_all_of_a_request_or_none_of_it(served: Served) -> None:
    served.purge()
    good = [job(f"n{i}") for i in range(3)]
    rejected = served.serve.call("POST", "/embed", {"jobs": [*good, {**good[0], "version": 3}]})
    assert rejected.status == 422
    assert rejected.body["rejected"] == [
        {
            "index": 3,
            "reason": "unknown_version",
            "detail": "version 3 is not declared (plan has 1)",
        }
    ]
    assert served.queued() == []
    extra = {**good[0], "noteId": "n-extra", "tags": ["unknown fields are ignored"]}
    accepted = served.serve.call("POST", "/embed", {"jobs": [*good, extra]})
    assert accepted.status == 202, accepted
    assert accepted.body["accepted"] == 4 and len(set(accepted.body["messageIds"])) == 4
    queued = served.queued()
    expected = [*good, {k: v for k, v in extra.items() if k != "tags"}]
    assert sorted(queued, key=lambda j: j["noteId"]) == sorted(expected, key=lambda j: j["noteId"])


def test_bodies_over_the_limits(served: Served) -> None:
    served.purge()
    huge = served.serve.call("POST", "/embed", raw=b'{"jobs": [' + b" " * 5000 + b"]}")
    assert huge.status == 413, huge
    assert huge.body["error"] == "too_large"
    assert "over the limit of 4096 bytes (service.max_body_bytes)" in huge.body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while it streams
        yield b'{"jobs": ['
        for _ in range(10):
            yield b" " * 1000
        yield b"]}"

    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    streamed = httpx.post(f"{served.serve.url}/embed", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    one_long_job = served.serve.call("POST", "/embed", job("long", "x" * 2000))
    assert one_long_job.status == 422
    (reason,) = one_long_job.body["rejected"]
    assert reason["reason"] == "too_large" and "the limit is 1024" in reason["detail"]
    assert served.queued() == []


def in_flight(served: Served) -> float:
    """The service's requests in flight now, as its /metrics says."""
    text = served.serve.call("GET", "/metrics").body
    line = next(
        x for x in text.splitlines() if x.startswith("constellation_http_requests_in_flight ")
    )
    return float(line.split()[1])


def test_beyond_max_in_flight_503_with_retry_after(served: Served) -> None:
    """Two queries held in flight by an index that stopped answering (SIGSTOP): the third is a
    503 with Retry-After, and /readyz is not ready while every slot is taken."""
    served.purge()
    query = {"text": "x", "userId": "u"}
    answers: list[int] = []

    def held() -> None:
        answers.append(served.serve.call("POST", "/query", query).status)

    served.chroma.process.send_signal(signal.SIGSTOP)
    threads = [threading.Thread(target=held) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        # Wait until /metrics (outside the bound) sees them: two held, plus the scrape itself.
        deadline = time.monotonic() + 30
        while in_flight(served) < 3:
            assert time.monotonic() < deadline, served.serve.tail()
            time.sleep(0.05)
        answer = served.serve.call("POST", "/query", query)
        assert answer.status == 503, answer
        assert answer.headers["retry-after"] == "1"
        assert answer.body["error"] == "overloaded"
        assert "2 requests in flight" in answer.body["detail"]
        assert served.serve.call("GET", "/healthz", token=None).status == 200
        assert served.serve.call("GET", "/metrics").status == 200
        ready = served.serve.call("GET", "/readyz")
        assert ready.status == 503 and "requests in flight" in ready.body["failing"], ready
    finally:
        served.chroma.process.send_signal(signal.SIGCONT)
        for t in threads:
            t.join(90)
    assert answers == [200, 200]
    assert served.serve.call("POST", "/query", query).status == 200
    ready = served.serve.call("GET", "/readyz")
    assert ready.status == 200, ready


def test_stalled_clients_hold_no_slot_and_are_closed(served: Served) -> None:
    """D3: 130 clients send a whole header block (with a token and Content-Length: 100) and
    stall, with two slots in all: a legitimate query is answered within 5 s. A client that stops
    half way through its headers (no token needed for that) is answered 408 and closed."""
    body = json.dumps({"text": "x", "userId": "u"}).encode().ljust(100)
    stalled = [
        partial_request(served.serve.port, "/query", body, WRITE_TOKEN, 0) for _ in range(130)
    ]
    half = socket.create_connection(("127.0.0.1", served.serve.port), timeout=30)
    half.sendall(b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
    try:
        start = time.monotonic()
        answer = served.serve.call("POST", "/query", {"text": "x", "userId": "u"})
        took = time.monotonic() - start
        assert answer.status == 200, answer
        assert took < 5, f"the legitimate query took {took:.1f}s"
        assert served.serve.call("GET", "/readyz").status == 200
        said = b""
        while chunk := half.recv(4096):  # the server closes it: recv returns b""
            said += chunk
        assert b"408" in said.split(b"\r\n")[0] and b"header_timeout" in said, said
        assert time.monotonic() - start < 25
    finally:
        half.close()
        for sock in stalled:
            sock.close()


def test_queue_down_is_a_503_naming_the_queue(served: Served) -> None:
    served.moto.stop()
    try:
        answer = served.serve.call("POST", "/embed", job("while-down"))
        assert answer.status == 503, answer
        assert answer.body["component"] == "queue" and answer.headers["retry-after"] == "1"
        assert answer.body["detail"].startswith("queue unavailable: ")
        ready = served.serve.call("GET", "/readyz")
        assert ready.status == 503 and ready.body["failing"] == ["queue"]
    finally:
        served.moto.start()
    served.provision()  # moto keeps its queues in memory: a restarted one has none
    assert served.serve.call("POST", "/embed", job("after")).status == 202
    assert served.serve.call("GET", "/readyz").status == 200


def test_index_down_is_a_503_naming_the_index(served: Served) -> None:
    query = {"text": "anything", "userId": "fault-user"}
    assert served.serve.call("POST", "/query", query).status == 200
    served.chroma.stop()
    try:
        answer = served.serve.call("POST", "/query", query)
        assert answer.status == 503, answer
        assert answer.body["component"] == "index"
        assert "Chroma server at" in answer.body["detail"]
        ready = served.serve.call("GET", "/readyz")
        assert ready.status == 503 and "index" in ready.body["failing"]
        assert "model" not in ready.body["failing"]
    finally:
        served.chroma.start()
    assert served.serve.call("POST", "/query", query).status == 200


def test_the_old_system_down_during_search_is_a_503_naming_it(served: Served) -> None:
    """Before the migration the old system answers every search: with its Chroma server
    stopped, /search is a 503 naming the old system (never a 500), and answers again after."""
    search = {"text": "anything", "userId": "fault-user"}
    answer = served.serve.call("POST", "/search", search)
    assert answer.status == 200 and answer.body["servedBy"] == "old", answer
    served.chroma.stop()
    try:
        answer = served.serve.call("POST", "/search", search)
        assert answer.status == 503, answer
        assert answer.body["component"] == "old system", answer
        assert "Chroma server at" in answer.body["detail"]
    finally:
        served.chroma.start()
    assert served.serve.call("POST", "/search", search).status == 200


def test_state_store_down_is_a_503_naming_it(served: Served) -> None:
    search = {"text": "anything", "userId": "fault-user"}
    assert served.serve.call("POST", "/search", search).status == 200
    # That search's shadow comparison is written to the same file after the answer: let it land
    # first, or its write (and a WAL checkpoint) could race the damage below and repair it.
    time.sleep(served.plan.migration.traffic.shadow_timeout + 1.0)
    # A damaged SQLite state file fails the way an unreachable database does: SQLAlchemy raises.
    files = [Path(f"{served.plan.data_dir / 'state.db'}{s}") for s in ("", "-wal", "-shm")]
    saved = {f: f.read_bytes() for f in files if f.exists()}
    assert saved, "the service has not opened its state store"
    for f in saved:
        with f.open("r+b") as damaged:
            damaged.write(b"\xffdamaged" * 1024)
    try:
        answer = served.serve.call("POST", "/search", search)
        assert answer.status == 503, answer
        assert answer.body["component"] == "state store"
        ready = served.serve.call("GET", "/readyz")
        assert ready.status == 503 and ready.body["failing"] == ["state store"]
    finally:
        for f, data in saved.items():
            f.write_bytes(data)
    assert served.serve.call("POST", "/search", search).status == 200


def test_sigterm_finishes_requests_in_flight_and_loses_no_accepted_job(served: Served) -> None:
    served.purge()
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def stream(worker: int) -> None:
        headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
        with httpx.Client(base_url=served.serve.url, headers=headers, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                note = f"stream-{worker}-{i}"
                try:
                    response = http.post("/embed", json=job(note))
                except httpx.TransportError:
                    return  # the server stopped accepting: this one was never answered
                if response.status_code == 202:
                    with lock:
                        accepted.append(note)
                elif response.status_code != 503:  # 503: over max_in_flight, retry
                    return

    # One request stays in flight across the SIGTERM: its body arrives only afterwards.
    late = json.dumps(job("in-flight-at-sigterm")).encode()
    held = partial_request(served.serve.port, "/embed", late, WRITE_TOKEN, 20)
    threads = [threading.Thread(target=stream, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(accepted) < 30:
        assert all(t.is_alive() for t in threads), served.serve.tail()
        assert time.monotonic() < deadline, f"{len(accepted)} accepted in 60 s"
        time.sleep(0.05)
    served.serve.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    status, body = finish_request(held, late[20:])
    code = served.serve.process.wait(90)
    stop.set()
    for t in threads:
        t.join(30)
    assert code == 0, served.serve.tail()
    assert status == 202, body
    queued = {j["noteId"] for j in served.queued()}
    missing = set(accepted) - queued
    assert missing == set(), f"{len(missing)} accepted jobs are not on the queue"
    assert "in-flight-at-sigterm" in queued
    assert len(accepted) >= 30
