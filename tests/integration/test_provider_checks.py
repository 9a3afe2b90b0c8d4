"""What operators see of a provider (Infinity, behind our fault proxy): ``verify`` names a bad
key and a wrong dimension in one line each and shows latency and rate-limit headroom;
``provision`` refuses a wrong dimension; a provider down during a search is one line on the
command line (exit 4) and a 503 naming it over HTTP, while the router keeps answering from the
old system; ``/readyz``, ``stats`` and the alert rule report an outage a worker sees;
``check capacity`` bounds the backfill by the provider's limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from constellation.api.app import create_app
from constellation.api.serving import ServiceRuntime
from constellation.monitoring.stats import alert_values, read_stats
from constellation.monitoring.worker_metrics import worker_metrics
from constellation.plan import Plan, load_plan
from constellation.queues.port import Outgoing
from constellation.services import Services
from constellation.wiring.migration import Migration
from constellation.wiring.worker import run_worker
from constellation.worker.control import AlwaysEnabled
from phases.checks.capacity import check_capacity
from phases.doctor.provider import diagnose_provider
from phases.operate.provision import provision
from phases.operate.tune import tune
from tests.fakes import RecordingEmbedder
from tests.integration.conftest import FAST, provider_model, wait_for, write_plan
from tests.support.cli import Invoke
from tests.support.fault_proxy import FaultProxy
from tests.support.infinity import API_KEY
from tests.support.migration import rig, sample_app
from tests.support.servers import free_port

pytestmark = pytest.mark.servers


def plan_at(tmp_path: Path, url: str, **provider: Any) -> Path:
    return write_plan(tmp_path / "plan.yaml", "local.yaml", FAST, provider_model(url, **provider))


def test_verify_shows_the_providers_latency_and_headroom(
    fault_proxy: FaultProxy, infinity_key: str, invoke: Invoke, tmp_path: Path
) -> None:
    fault_proxy.extra_headers = {
        "x-ratelimit-limit-requests": "3000",
        "x-ratelimit-remaining-requests": "2999",
        "x-ratelimit-reset-requests": "20ms",
    }
    path = plan_at(tmp_path, fault_proxy.url, requests_per_minute=600)
    result = invoke("--plan", str(path), "verify", "--inline", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    provider = checks["embedding provider v3"]
    assert provider["passed"]
    assert "answers in" in provider["detail"] and " ms" in provider["detail"]
    assert "2,999 of 3,000 requests left" in provider["detail"]
    assert "our limits: 600 requests/min" in provider["detail"]
    assert all(c["passed"] for c in checks.values()), checks


def test_verify_names_a_wrong_key_in_one_line(
    fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, invoke: Invoke, tmp_path: Path
) -> None:
    monkeypatch.setenv("INFINITY_TEST_KEY", "sk-not-the-key-4242")
    result = invoke("--plan", str(plan_at(tmp_path, fault_proxy.url)), "verify", "--inline")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: verify failed: embedding provider v3: "), line
    assert "401 Unauthorized" in line and "models.3.provider.api_key" in line, line
    assert "sk-not-the-key" not in result.output + result.stderr


def test_verify_and_provision_name_a_wrong_dimension_in_one_line(
    fault_proxy: FaultProxy, infinity_key: str, invoke: Invoke, tmp_path: Path
) -> None:
    fault_proxy.wrong_dimension = True
    path = str(plan_at(tmp_path, fault_proxy.url))
    result = invoke("--plan", path, "verify", "--inline")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: verify failed: embedding provider v3: "), line
    assert "answers 768-dimension vectors but the plan says 384" in line, line
    provisioned = invoke("--plan", path, "provision")
    assert provisioned.exit_code != 0
    assert "answers 768-dimension vectors but the plan says 384" in provisioned.output + (
        provisioned.stderr
    )


@pytest.fixture
def served(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> Iterator[tuple[str, Plan, Migration]]:
    """The service over a real socket: the old system on a recording model (version 1), the
    new index through the provider (version 3); a sample app provisioned and embedded."""
    plan, services = rig(tmp_path, provider_model(fault_proxy.url))
    sample_app(plan, services, notes=12, users=2)
    provision(plan, services)
    notes = Migration(plan, services)
    bodies = [n.job(3).to_body() for n in notes.source.iter_notes()]
    assert services.queue.send_batch([Outgoing(b) for b in bodies]).ok
    run_worker(plan, services, AlwaysEnabled(), drain=True)
    notes.close()
    services.close()
    import uvicorn

    old_model = RecordingEmbedder(model_id="all-MiniLM-L6-v2", dimension=384, max_tokens=256)
    live = Services(plan, embedders={1: old_model})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(plan, services=live),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 60, "the service started")
    m = Migration(plan, Services(plan, write=False, embedders={1: old_model}))
    try:
        yield f"http://127.0.0.1:{port}", plan, m
    finally:
        server.should_exit = True
        thread.join(60)
        m.close()
        m.services.close()
        live.close()


def test_a_provider_down_during_a_search(
    served: tuple[str, Plan, Migration], fault_proxy: FaultProxy, invoke: Invoke
) -> None:
    url, plan, m = served
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/query", json={"text": "loops", "userId": "user-01"}).status_code == 200
        fault_proxy.down()
        answer = http.post("/query", json={"text": "loops", "userId": "user-01"})
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["component"] == "embedding provider", body
        assert fault_proxy.url.split("//")[1] in body["detail"]
        # phase 2 (dual writes, this user read from the new system): the old one answers
        m.state.change("test", "phase 2", phase=2, write_mode="dual", read_traffic=1.0)
        time.sleep(0.05)  # state_refresh is 0 in the rig: the next search reads it
        searched = http.post("/search", json={"text": "loops", "userId": "user-01"})
        assert searched.status_code == 200, searched.text
        assert searched.json()["servedBy"] == "old"
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert "embedding provider v3" in ready.json()["failing"]
    result = invoke("--plan", str(plan.file), "query", "loops", "--user", "user-01")
    assert result.exit_code == 4, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "embedding provider" in lines[0], result.stderr
    fault_proxy.up()


def test_an_outage_a_worker_sees_reaches_stats_and_the_alert(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    plan = load_plan(plan_at(tmp_path, fault_proxy.url, failures_to_open=2))
    with Services(plan) as services:
        provision(plan, services)
        fault_proxy.down()
        embedder = services.embedder(3)
        with pytest.raises(Exception, match="unavailable"):
            embedder.embed(["a job's text"])
        with worker_metrics(plan, services, interval=3600) as run:
            run.tick()
            stats = read_stats(plan, services)
        assert stats.providers_unavailable == [3]
        assert alert_values(stats)["provider_unavailable"] == 1.0
        fault_proxy.up()
        runtime = ServiceRuntime(plan, services=services)
        try:
            wait_for(
                lambda: all(c.ok for c in runtime.readiness() if c.name.startswith("embedding")),
                30,
                "readiness saw the provider back (a probe)",
            )
        finally:
            runtime.close()


def test_check_capacity_bounds_the_backfill_by_the_providers_limits(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    overrides = provider_model(fault_proxy.url, requests_per_minute=60, texts_per_request=4)
    overrides["migration"] = {"capacity": {"sample": 12}}  # 3 requests at 1 a second
    plan, services = rig(tmp_path, overrides)
    sample_app(plan, services, notes=40, users=2)
    with Migration(plan, services) as m:
        report = check_capacity(m, version=3)
    services.close()
    assert report.limited_by == "requests per minute" and report.limit_rate == 4.0
    assert report.rate is not None and report.backfill_seconds is not None
    assert report.backfill_seconds == pytest.approx(report.to_embed / min(report.rate, 4.0))
    assert report.backfill_seconds >= report.to_embed / 4.0


def test_doctor_names_a_refused_key_and_a_rate_limit_nearly_used_up(
    fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fault_proxy.extra_headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "1s",
    }
    monkeypatch.setenv("INFINITY_TEST_KEY", API_KEY)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    plan, services = rig(tmp_path / "a", provider_model(fault_proxy.url))
    with Migration(plan, services) as m:
        area = diagnose_provider(m, read_stats(plan, services))
    services.close()
    (finding,) = area.findings
    assert "4 of 100 requests left" in finding.problem and "nearly used up" in finding.problem
    assert "requests_per_minute" in finding.next_command

    monkeypatch.setenv("INFINITY_TEST_KEY", "sk-wrong-9999")
    plan, services = rig(tmp_path / "b", provider_model(fault_proxy.url))
    with Migration(plan, services) as m:
        area = diagnose_provider(m, read_stats(plan, services))
    services.close()
    assert [f.problem.split(":")[0] for f in area.findings] == ["model v3"]
    assert "401 Unauthorized" in area.findings[0].problem
    assert area.findings[0].next_command.startswith("set the key the plan reads (models.3")


def test_tune_says_when_the_providers_limits_set_the_pace(
    fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    overrides = provider_model(fault_proxy.url, requests_per_minute=120, texts_per_request=4)
    plan, services = rig(tmp_path, overrides)
    with Migration(plan, services) as m:
        report = tune(m, sample=24, batch_sizes=[8], concurrencies=[4], version=3)
    services.close()
    assert report.limit_rate == 8.0  # 2 requests a second of 4 texts
    assert report.recommended.jobs_per_second <= 8.0 * 1.1
    assert any("requests per minute allow 8.0 texts/s" in n for n in report.notes), report.notes
