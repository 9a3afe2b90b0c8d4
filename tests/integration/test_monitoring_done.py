"""Issue 4's "done when", through the CLI with the real model and the embedded default, and
`/metrics` scraped from a `worker run --metrics-port` process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from constellation.jobs import Job
from constellation.monitoring import queries as q
from constellation.monitoring.store import MetricsStore
from constellation.queues.port import Outgoing
from constellation.queues.sqlite import SqliteBroker
from tests.integration.conftest import (
    CONSTELLATION,
    FAST,
    WorkerProcess,
    provision_plan,
    wait_for,
    write_plan,
)
from tests.support.cli import Invoke
from tests.support.servers import free_port

pytestmark = pytest.mark.model

#: one malformed job per rejection reason
MALFORMED = {
    "not_json": "{not json",
    "not_an_object": "[1, 2, 3]",
    "missing_field": json.dumps({"userId": "u", "noteId": "n", "text": "t", "created": 1}),
    "wrong_type": json.dumps({"userId": "u", "noteId": "n", "text": 7, "created": 1, "version": 1}),
    "unknown_version": Job("u", "n", "t", 1, 42).to_body(),
}
TOPICS = ["garden", "invoice", "museum", "recipe", "deadline", "birthday", "library", "travel"]


def note(i: int) -> Job:
    text = f"note {i} about {TOPICS[i % len(TOPICS)]} and {TOPICS[(i * 3) % len(TOPICS)]}"
    return Job(f"user{i % 7}", f"note{i}", text, 1_700_000_000_000 + i, 1)


@pytest.mark.usefixtures("shared_model")
def test_done_when(invoke: Invoke, local_plan: Path) -> None:
    plan = ("--plan", str(local_plan))
    assert invoke(*plan, "provision").exit_code == 0

    jobs = local_plan.parent / "jobs.jsonl"
    jobs.write_text("".join(note(i).to_body() + "\n" for i in range(200)))
    sent = invoke(*plan, "enqueue", "--file", str(jobs))
    assert sent.exit_code == 0, sent.output
    # Producers other than `enqueue` may send anything: these go past its validation.
    broker = SqliteBroker(local_plan.parent / "data" / "queue.db")
    assert broker.open("embed-queue").send_batch([Outgoing(b) for b in MALFORMED.values()]).ok
    broker.close()

    run = invoke(*plan, "worker", "run", "--drain", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["reason"] == "drained"

    result = invoke(*plan, "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["jobs"]["processed"] == 200
    assert stats["jobs"]["failed"] == 5
    assert stats["jobs"]["failed_by_reason"] == dict.fromkeys(sorted(MALFORMED), 1)
    assert stats["dead_letter"]["total"] == 5 and stats["queue"]["total"] == 0
    assert stats["index_size"] == {"1": 200, "2": 0}  # version 2 is declared, not yet used
    window = stats["window"]
    assert window["jobs"] == 205 and window["error_rate"] == round(5 / 205, 4)
    latency = window["processing_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert window["mean_embedding_batch_size"] > 1

    alerts = invoke(*plan, "monitor", "--once")
    assert alerts.exit_code == 1
    firing = [line for line in alerts.stdout.splitlines() if "firing" in line]
    assert len(firing) == 1 and "EmbedDeadLetters" in firing[0]
    assert "firing: EmbedDeadLetters" in alerts.stderr

    frame = invoke(*plan, "dashboard", "--once")
    assert frame.exit_code == 0, frame.output
    assert "processed 200" in frame.stdout and "Queue depth" in frame.stdout
    page = local_plan.parent / "report.html"
    html = invoke(*plan, "dashboard", "--html", str(page))
    assert html.exit_code == 0, html.output
    assert page.read_text().count('<img src="data:image/png;base64,') == 10


def test_a_single_job_and_three_searches_on_an_idle_default_raise_no_alert(
    local_plan: Path,
) -> None:
    """The default plan's batch wait and its alert bounds agree: one note sent to an idle
    service (a worker process that loads its model for it) ends with every alert ok. The
    batch-processing alert measures the batch (not the wait to fill it, nor the model's load,
    which is a figure of its own)."""
    plan = [CONSTELLATION, "--plan", str(local_plan)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*plan, *args], capture_output=True, text=True, timeout=600)

    assert cli("provision").returncode == 0
    sent = cli("enqueue", "--user", "u1", "--note", "n1", "--text", "a single note, quietly")
    assert sent.returncode == 0, sent.stderr
    drained = cli("worker", "run", "--drain", "--json")
    assert drained.returncode == 0, drained.stderr
    # three searches, each its own process loading the model: their latency is the search's
    for text in ("a single note", "quietly", "something else"):
        found = cli("query", text, "--user", "u1", "--json")
        assert found.returncode == 0, found.stderr
    assert [r["note_id"] for r in json.loads(found.stdout)] == ["n1"]
    monitor = cli("monitor", "--once", "--json")
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr
    states = {a["name"]: a["state"] for a in json.loads(monitor.stdout)["alerts"]}
    assert set(states.values()) == {"ok"}, states
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["window"]["batch_ms"]["p95"] < 2000
    assert stats["window"]["query_p95_ms"] < 2000  # a model's load is never a query's time
    # the load was measured all the same, as its own figure
    timeline = MetricsStore(local_plan.parent / "data" / "metrics.db").load(
        "notes", "development", 0.0, time.time() + 1
    )
    loads = [
        value
        for snapshots in timeline.values()
        for _, samples in snapshots
        for value in samples.get(q.MODEL_LOAD, {}).values()
    ]
    assert loads and max(loads) > 0, timeline


def scrape(url: str) -> dict[str, float]:
    """Unlabelled samples and failed-job counters by error type."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f":{v}" for v in s.labels.values())
            samples[key] = s.value
    return samples


def test_metrics_are_served_by_a_worker_process(
    tmp_path: Path,
    invoke: Invoke,
    worker_process: Callable[..., WorkerProcess],
) -> None:
    path = write_plan(tmp_path / "plan.yaml", "local.yaml", FAST)
    plan = provision_plan(path)
    queue = SqliteBroker(plan.queue_path).open(plan.queue.name)
    bodies = [note(i).to_body() for i in range(10)] + [MALFORMED["not_json"]]
    assert queue.send_batch([Outgoing(b) for b in bodies]).ok

    port = free_port()
    worker = worker_process(path, "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"

    def done() -> bool:
        try:
            return scrape(url).get("constellation_jobs_processed_total") == 10
        except OSError:  # not serving yet (the model is loading), or the worker died
            if worker.process.poll() is not None:
                pytest.fail(f"the worker exited:\n{worker.stderr[-3000:]}")
            return False

    wait_for(done, 180, "the worker's /metrics counts 10 processed jobs", interval=0.5)
    samples = scrape(url)
    assert samples["constellation_jobs_failed_total:not_json"] == 1
    assert samples["constellation_jobs_dead_lettered_total:not_json"] == 1
    assert samples["constellation_jobs_failed_total:model_error"] == 0
    assert samples["constellation_job_latency_seconds_count"] == 10
    assert samples["constellation_embedding_batch_size_sum"] == 10
    assert f"serving metrics on {url}" in worker.stderr

    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.stderr[-3000:]
    # The final snapshot, written as the worker stopped, holds everything it did.
    stats = json.loads(invoke("--plan", str(path), "stats", "--json").stdout)
    assert stats["jobs"]["processed"] == 10
    assert stats["jobs"]["failed_by_reason"] == {"not_json": 1}
