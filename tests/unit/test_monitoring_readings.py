"""The questions, their PromQL, and the two readers that answer them."""

from __future__ import annotations

import math
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from constellation.errors import MonitoringError
from constellation.monitoring import queries as q
from constellation.monitoring.metrics import ServiceMetrics
from constellation.monitoring.panels import read_dashboard
from constellation.monitoring.queries import (
    Increase,
    Latest,
    Mean,
    Quantile,
    Total,
    format_duration,
    parse_duration,
    promql,
)
from constellation.monitoring.readings import (
    PrometheusReader,
    SnapshotReader,
    histogram_quantile,
    open_reader,
)
from constellation.monitoring.stats import read_stats
from constellation.monitoring.store import Instance, MetricsStore
from constellation.plan import load_plan
from constellation.worker.events import PROCESSED, SKIPPED, BatchTiming
from tests.support.http import Request, local_server
from tests.support.monitoring import open_stub, write_plan
from tests.support.servers import free_port

T0 = 1_700_000_000.0


def test_promql_of_each_kind_of_question() -> None:
    assert promql(Total(q.FAILED, "error_type"), "5m") == (
        "sum by (error_type) (constellation_jobs_failed_total)"
    )
    assert promql(Latest(q.QUEUE_DEPTH), "5m") == "max(constellation_queue_depth)"
    assert promql(Increase(q.PROCESSED, per_second=True), "1m") == (
        "sum(rate(constellation_jobs_processed_total[1m]))"
    )
    assert promql(q.PROCESSING_P95_MS, "5m") == (
        "histogram_quantile(0.95, sum by (le) "
        "(rate(constellation_batch_duration_seconds_bucket[5m]))) * 1000"
    )
    assert promql(Mean(q.EMBED_BATCH), "5m") == (
        "sum(rate(constellation_embedding_batch_size_sum[5m])) / "
        "sum(rate(constellation_embedding_batch_size_count[5m]))"
    )
    assert promql(q.ERROR_RATE, "5m") == (
        "sum(increase(constellation_jobs_failed_total[5m])) / ("
        "sum(increase(constellation_jobs_processed_total[5m])) + "
        "sum(increase(constellation_jobs_skipped_total[5m])) + "
        "sum(increase(constellation_jobs_failed_total[5m])))"
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (300, "5m"), (900, "15m"), (7200, "2h"), (90, "90s")]
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_a_bad_duration_says_what_to_give() -> None:
    with pytest.raises(MonitoringError, match="give seconds"):
        parse_duration("soon")


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    inf = math.inf
    # 10 observations ≤ 1, 10 more ≤ 2: the median is at the top of the first bucket
    assert histogram_quantile(0.5, {1.0: 10, 2.0: 20, inf: 20}) == 1.0
    assert histogram_quantile(0.75, {1.0: 10, 2.0: 20, inf: 20}) == 1.5
    assert histogram_quantile(0.25, {1.0: 10, 2.0: 20, inf: 20}) == 0.5
    # a rank in the +Inf bucket answers the largest finite bound
    assert histogram_quantile(0.99, {1.0: 10, 2.0: 10, inf: 20}) == 2.0
    assert histogram_quantile(0.5, {1.0: 0, inf: 0}) is None


def record(
    store: MetricsStore, instance: str, at: float, metrics: ServiceMetrics, env: str = "test"
) -> None:
    store.register(Instance(instance, "notes", env, "worker", "h", 1, at, at))
    store.append(instance, at, metrics.samples())


def test_snapshot_arithmetic_over_instances_and_windows(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.db")
    a, b = ServiceMetrics(), ServiceMetrics()
    record(store, "a", T0, a)
    for _ in range(10):
        a.job_done(PROCESSED, 0.5, truncated=False)
    a.set_queue(40, 5)
    record(store, "a", T0 + 100, a)
    record(store, "b", T0 + 150, b)  # a second worker, started later
    for _ in range(4):
        b.job_done(PROCESSED, 3.0, truncated=False)
    b.job_done(SKIPPED, 0.1, truncated=False)
    b.job_failed("model_error", dead_lettered=False)
    b.batch_done(BatchTiming(6, 4, 4, 0.2, 0.1, 0.4))
    b.set_queue(12, 0)
    record(store, "b", T0 + 200, b)
    # another environment in the same file is not counted
    other = ServiceMetrics()
    other.job_done(PROCESSED, 0.5, truncated=False)
    record(store, "c", T0 + 200, other, env="prod")

    reader = SnapshotReader(store, "notes", "test")
    questions = {
        "total": Total(q.PROCESSED),
        "recent": Increase(q.PROCESSED),
        "failed": Total(q.FAILED, "error_type"),
        "rate": q.ERROR_RATE,
        "p50": Quantile(0.5, q.JOB_LATENCY),
        "queue": Latest(q.QUEUE_DEPTH),
        "embed": Mean(q.EMBED_BATCH),
    }
    everything = reader.instant(questions, T0 + 200, 300)
    assert everything["total"] == {"": 14}
    assert everything["recent"] == {"": 14}
    assert everything["failed"]["model_error"] == 1 and everything["failed"]["not_json"] == 0
    assert everything["rate"] == {"": pytest.approx(1 / 16)}
    assert everything["queue"] == {"": 12}  # the most recent reading
    assert everything["embed"] == {"": 4}
    # the last 60 s hold only worker b's work
    recent = reader.instant(questions, T0 + 200, 60)
    assert recent["recent"] == {"": 4}
    # 1 observation ≤ 0.1 s and 4 in (2, 5]: the median interpolates inside (2, 5]
    assert recent["p50"] == {"": pytest.approx(2 + 3 * (2.5 - 1) / (5 - 1))}
    assert reader.instant(questions, T0 - 10, 300) == {k: {} for k in questions}


def test_snapshot_ranges_step_through_time(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "metrics.db")
    m = ServiceMetrics()
    for i in range(4):
        m.set_queue(100 * i, 0)
        for _ in range(i):
            m.job_done(PROCESSED, 0.2, truncated=False)
        record(store, "a", T0 + 10 * i, m)
    series = SnapshotReader(store, "notes", "test").range(
        {"queue": Latest(q.QUEUE_DEPTH), "done": Increase(q.PROCESSED)}, T0, T0 + 30, 10
    )
    assert series["queue"] == {"": [(T0, 0), (T0 + 10, 100), (T0 + 20, 200), (T0 + 30, 300)]}
    assert series["done"] == {"": [(T0, 0), (T0 + 10, 1), (T0 + 20, 2), (T0 + 30, 3)]}


def test_reading_never_creates_the_metrics_file(tmp_path: Path) -> None:
    store = MetricsStore(tmp_path / "data" / "metrics.db")
    assert SnapshotReader(store, "n", "e").instant({"x": Total(q.PROCESSED)}, T0, 60) == {"x": {}}
    assert store.alert_states("n", "e") == {}
    assert not (tmp_path / "data").exists()


# Prometheus -----------------------------------------------------------------------------------
def prometheus(answers: dict[str, list[dict[str, Any]]]) -> Any:
    """A stand-in for Prometheus's HTTP API: canned results per PromQL, empty otherwise."""

    def answer(request: Request) -> tuple[int, Any]:
        url = urllib.parse.urlparse(request.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        if url.path not in ("/api/v1/query", "/api/v1/query_range"):
            return 404, {"status": "error", "error": "not found"}
        if "(" in params["query"] and params["query"].count("(") != params["query"].count(")"):
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        result = answers.get(params["query"], [])
        if url.path.endswith("query"):  # an instant query answers each series' last value
            result = [
                {"metric": r["metric"], "value": r["values"][-1]} if "values" in r else r
                for r in result
            ]
            return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    return local_server(answer)


def vector(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [T0, value]}


def test_read_stats_from_prometheus(tmp_path: Path) -> None:
    answers = {
        promql(Total(q.PROCESSED), "5m"): [vector("200")],
        promql(Total(q.FAILED, "error_type"), "5m"): [
            vector("3", error_type="not_json"),
            vector("2", error_type="missing_field"),
            vector("0", error_type="timeout"),
        ],
        promql(q.ERROR_RATE, "5m"): [vector("0.0243")],
        promql(Quantile(0.95, q.JOB_LATENCY, 1000.0), "5m"): [vector("1234.5")],
        promql(q.QUERY_P95_MS, "5m"): [vector("NaN")],
        promql(Latest(q.INDEX_SIZE, "version"), "5m"): [vector("200", version="1")],
    }
    with prometheus(answers) as server:
        plan_path = write_plan(tmp_path, f"  prometheus_url: {server.url}/\n")
        plan, services = open_stub(plan_path)
        reader = open_reader(plan)
        assert isinstance(reader, PrometheusReader)
        services.memory_index.down = True  # index size comes from Prometheus's gauge
        stats = read_stats(plan, services, now=T0)  # type: ignore[arg-type]
    assert stats.source == f"Prometheus at {server.url}"
    assert stats.jobs.processed == 200
    assert stats.jobs.failed == 5
    assert stats.jobs.failed_by_reason == {"missing_field": 2, "not_json": 3}
    assert stats.window.error_rate == 0.0243
    assert stats.window.processing_ms.p95 == 1234.5
    assert stats.window.query_p95_ms is None  # NaN: nothing observed
    assert stats.index_size == {1: 200}
    assert stats.queue.total == 0  # live from the queue, not Prometheus
    queried = [
        dict(urllib.parse.parse_qsl(urllib.parse.urlparse(r.path).query)) for r in server.requests
    ]
    assert {p["time"] for p in queried} == {f"{T0:.3f}"}
    assert promql(q.ERROR_RATE, "5m") in {p["query"] for p in queried}


def test_dashboard_series_from_prometheus_ranges(tmp_path: Path) -> None:
    matrix = {
        "metric": {},
        "values": [[T0 - 60, "3"], [T0, "5"]],
    }
    answers = {promql(Latest(q.QUEUE_DEPTH), "60s"): [matrix]}
    with prometheus(answers) as server:
        plan, services = open_stub(write_plan(tmp_path, f"  prometheus_url: {server.url}\n"))
        data = read_dashboard(plan, services, range_seconds=3600, points=60, now=T0)  # type: ignore[arg-type]
    queue = next(p for p in data.panels if p.panel.key == "queue")
    assert queue.series["embed queue"] == [(T0 - 60, 3.0), (T0, 5.0)]
    assert queue.threshold == 1000
    ranges = [r for r in server.requests if "query_range" in r.path]
    assert len(ranges) == sum(len(p.panel.lines) for p in data.panels)


def test_prometheus_errors_name_the_next_step() -> None:
    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(MonitoringError, match=r"check monitoring\.prometheus_url"):
        reader.instant({"x": Total(q.PROCESSED)}, T0, 300)
    with prometheus({}) as server, pytest.raises(MonitoringError, match="parse error"):
        PrometheusReader(server.url).instant({"x": Total("broken(")}, T0, 300)


def test_a_plan_without_prometheus_reads_snapshots(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path))
    reader = open_reader(plan)
    assert isinstance(reader, SnapshotReader) and reader.store.path == plan.metrics_path
