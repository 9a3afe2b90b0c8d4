"""The model failing during a search, over a real socket: the service (uvicorn, our
middlewares, the router) runs in a thread of this process with a model that refuses one text,
so the failure comes from inside exactly where a real model's would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from constellation.api.app import create_app
from constellation.api.connections import header_deadline_protocol
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.operate.provision import provision
from tests.fakes import RecordingEmbedder
from tests.support.migration import rig, sample_app
from tests.support.servers import free_port

REFUSED = "a text the model refuses"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Migration]]:
    plan, services = rig(tmp_path)
    sample_app(plan, services, notes=12, users=2)
    provision(plan, services)
    services.close()
    failing = RecordingEmbedder(
        model_id="all-MiniLM-L6-v2", dimension=384, max_tokens=256, fail_on=[REFUSED]
    )
    served = Services(plan, embedders={1: failing})
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(plan, services=served),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        http=header_deadline_protocol(10.0),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
        time.sleep(0.05)
    operator = Services(plan, write=False, embedders={1: failing})
    m = Migration(plan, operator)
    try:
        yield f"http://127.0.0.1:{port}", m
    finally:
        server.should_exit = True
        thread.join(60)
        m.close()
        operator.close()
        served.close()


def test_the_model_failing_during_a_search_is_a_503_naming_the_side(
    service: tuple[str, Migration],
) -> None:
    """Before the migration the old system serves /search: its model failing is a 503 naming
    the old system; /query's model failing is a 503 naming the model; other texts still answer."""
    url, _ = service
    with httpx.Client(base_url=url, timeout=60) as http:
        for path, component in (("/search", "old system"), ("/query", "model")):
            answer = http.post(path, json={"text": REFUSED, "userId": "user-01"})
            assert answer.status_code == 503, (path, answer.text)
            body = answer.json()
            assert body["component"] == component and "cannot embed" in body["detail"], body
            fine = http.post(path, json={"text": "how do loops work", "userId": "user-01"})
            assert fine.status_code == 200, (path, fine.text)
