"""The worker's metrics: /metrics over HTTP, snapshots, and `read_stats` from them.

A real SQLite queue pair, a recording fake model and an in-memory index; the worker runs
in-process with its monitoring session (the same wiring as `worker run`).
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from constellation.monitoring.stats import read_stats
from constellation.monitoring.store import MetricsStore
from constellation.monitoring.worker_metrics import query_metrics, worker_metrics
from constellation.query import search
from constellation.wiring.worker import run_worker
from constellation.worker import build_worker
from tests.support.monitoring import MALFORMED, open_stub, send_mix, write_plan


class Enabled:
    def consumer_enabled(self) -> bool:
        return True


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_endpoint_counts_what_was_processed(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 20)
    with worker_metrics(plan, services, port=0) as run:  # type: ignore[arg-type]
        assert run.url is not None and run.url.startswith("http://127.0.0.1:")
        worker = build_worker(plan, services, recorders=(run.metrics,))  # type: ignore[arg-type]
        worker.run(drain=True)
        run.tick()
        samples = scrape(run.url)

    assert samples[("constellation_jobs_processed_total", ())] == 20
    for reason in MALFORMED:
        failed = ("constellation_jobs_failed_total", (("error_type", reason),))
        assert samples[failed] == 1
        dead = ("constellation_jobs_dead_lettered_total", (("error_type", reason),))
        assert samples[dead] == 1
    assert samples[("constellation_jobs_failed_total", (("error_type", "model_error"),))] == 0
    assert samples[("constellation_job_latency_seconds_count", ())] == 20
    # 23 messages at batch size 8: three batches; 20 good ones embedded and upserted
    assert samples[("constellation_batch_duration_seconds_count", ())] == 3
    assert samples[("constellation_embedding_batch_size_sum", ())] == 20
    assert samples[("constellation_upsert_batch_size_sum", ())] == 20
    assert samples[("constellation_queue_depth", ())] == 0
    assert samples[("constellation_dead_letter_depth", ())] == 3
    assert samples[("constellation_index_size", (("version", "1"),))] == 20


def test_the_server_stops_with_the_run_and_uses_no_global_registry(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    plan, services = open_stub(write_plan(tmp_path))
    with worker_metrics(plan, services, port=0) as run:  # type: ignore[arg-type]
        url = run.url
        assert url is not None
        scrape(url)
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
    assert REGISTRY.get_sample_value("constellation_jobs_processed_total") is None


def test_stats_after_a_drain_are_exact(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 30)
    summary = run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    assert summary.reason == "drained"

    stats = read_stats(plan, services)  # type: ignore[arg-type]
    assert stats.jobs.processed == 30
    assert stats.jobs.failed == 3
    assert stats.jobs.failed_by_reason == dict.fromkeys(sorted(MALFORMED), 1)
    assert stats.jobs.dead_lettered_by_reason == dict.fromkeys(sorted(MALFORMED), 1)
    assert stats.queue.total == 0
    assert stats.dead_letter.total == 3
    assert stats.index_size == {1: 30}
    w = stats.window
    assert w.jobs == 33 and w.failed == 3
    assert w.error_rate == round(3 / 33, 4)
    p = w.processing_ms
    assert p.p50 is not None and p.p95 is not None and p.p99 is not None
    assert 0 < p.p50 <= p.p95 <= p.p99
    # means of what the fake model and index were really given
    model_calls = [len(b) for b in services.fake_embedder.batches]
    upserts = [len(u) for u in services.memory_index.upserts]
    assert w.mean_embedding_batch_size == round(sum(model_calls) / len(model_calls), 2)
    assert w.mean_upsert_batch_size == round(sum(upserts) / len(upserts), 2)
    assert w.query_p95_ms is None
    assert stats.notes == []

    # A second worker adds to the totals: several instances write to one file. The same
    # five notes again are unchanged, so they are skipped without the model.
    send_mix(services.queue, 5, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    again = read_stats(plan, services)  # type: ignore[arg-type]
    assert (again.jobs.processed, again.jobs.skipped) == (30, 5)
    assert again.jobs.skipped_by_reason == {"unchanged": 5}
    assert again.window.error_rate == round(3 / 38, 4)
    assert len(MetricsStore(plan.metrics_path).instances(plan.name, plan.environment)) == 2


def test_query_latency_is_recorded_through_the_search_hook(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 4, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    with query_metrics(plan, services) as observe:  # type: ignore[arg-type]
        for _ in range(3):
            hits = search(
                "note number 1",
                user_id="u1",
                index=services.index(),
                embedder=services.embedder(),
                observe=observe,
            )
            assert hits
    stats = read_stats(plan, services)  # type: ignore[arg-type]
    assert stats.window.query_p95_ms is not None and stats.window.query_p95_ms > 0
    assert stats.jobs.processed == 4  # the query process adds no jobs
    assert stats.queue.total == 0  # nor a stale queue reading


def test_a_costly_index_count_is_repeated_only_as_its_cost_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting two versions in one index reads every id: a count that took 1 s waits 50 s
    (2% of the time) before the next, unless an explicit refresh forces it."""
    from constellation.monitoring import metrics as m

    now = [100.0]
    calls: list[float] = []

    def slow_count(plan: object, services: object) -> dict[int, int]:
        calls.append(now[0])
        now[0] += 1.0  # the count itself takes a second
        return {1: len(calls), 2: 0}

    monkeypatch.setattr(m, "index_sizes", slow_count)
    sizes = m.IndexSizes(share=0.02, clock=lambda: now[0])
    assert sizes.read(None, None) == {1: 1, 2: 0}  # type: ignore[arg-type]
    now[0] += 10  # the next tick: 11 s after the count began, too soon
    assert sizes.read(None, None) == {1: 1, 2: 0}  # type: ignore[arg-type]
    assert sizes.read(None, None, force=True) == {1: 2, 2: 0}  # type: ignore[arg-type]
    now[0] = calls[-1] + 49.9
    assert sizes.read(None, None) == {1: 2, 2: 0}  # type: ignore[arg-type]
    now[0] = calls[-1] + 50.0
    assert sizes.read(None, None) == {1: 3, 2: 0}  # type: ignore[arg-type]
    assert len(calls) == 3
