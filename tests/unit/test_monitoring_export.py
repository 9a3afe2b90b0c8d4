"""The exported Prometheus rules and Grafana dashboard, and the HTML report."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from constellation.monitoring.deployment import identify
from constellation.monitoring.export import dashboard, export, render_dashboard, render_rules
from constellation.monitoring.metrics import ServiceMetrics
from constellation.monitoring.panels import PANELS, read_dashboard
from constellation.monitoring.report import write_report
from constellation.monitoring.store import MetricsStore
from constellation.monitoring.worker_metrics import SnapshotWriter
from constellation.plan import Plan, load_plan
from constellation.worker.events import PROCESSED, BatchTiming
from tests.support.cli import REPO
from tests.support.monitoring import open_stub, write_plan

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Plan:
    monkeypatch.delenv("CONSTELLATION_DATA", raising=False)
    return load_plan(REPO / "plans/local.yaml")


def exposed_names() -> set[str]:
    """Every sample name a worker's /metrics can show."""
    names: set[str] = set()
    for family in ServiceMetrics().registry.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def check_expr(expr: str) -> None:
    for opening, closing in ("()", "[]", "{}"):
        assert expr.count(opening) == expr.count(closing), expr
    used = set(re.findall(r"\bconstellation_[a-z_]+", expr))
    assert used and used <= exposed_names(), used - exposed_names()


def test_the_committed_files_are_what_export_writes(local: Plan, tmp_path: Path) -> None:
    written = export(local, tmp_path / "out")
    assert [p.name for p in written] == ["alerts.yaml", "dashboard.json"]
    for path in written:
        committed = REPO / "monitoring" / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} is stale: run `constellation monitoring export`"
        )


def test_the_rule_file_is_a_prometheus_rule_file(local: Plan, tmp_path: Path) -> None:
    text = render_rules(local)
    data = yaml.safe_load(text)
    assert set(data) == {"groups"}
    (group,) = data["groups"]
    assert set(group) == {"name", "rules"} and _NAME.match(group["name"].replace("-", "_"))
    rules: list[dict[str, Any]] = group["rules"]
    assert [r["alert"] for r in rules] == [a.name for a in local.monitoring.alerts]
    for rule, plan_rule in zip(rules, local.monitoring.alerts, strict=True):
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert _NAME.match(rule["alert"])
        assert _DURATION.match(rule["for"]), rule["for"]
        assert isinstance(rule["expr"], str)
        check_expr(rule["expr"])
        assert rule["expr"].endswith(f" {plan_rule.op} {plan_rule.threshold:g}")
        assert all(
            isinstance(v, str) for v in (*rule["labels"].values(), *rule["annotations"].values())
        )
        assert rule["labels"]["severity"] == plan_rule.severity
    assert [r["for"] for r in rules] == ["15m", "5m", "10m", "1m", "0s"]
    promtool = shutil.which("promtool")
    if promtool:
        path = tmp_path / "alerts.yaml"
        path.write_text(text)
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_has_the_panels_operators_asked_for(local: Plan) -> None:
    board = json.loads(render_dashboard(local))
    assert board == dashboard(local)
    titles = [p["title"] for p in board["panels"]]
    for words in (
        "Queue depth",
        "Processing time",
        "by error type",
        "Embedding batch",
        "Upsert batch",
        "Query response",
        "Index size",
        "Jobs per second",
        "Model and index time",
    ):
        assert any(words in t for t in titles), words
    assert len({p["id"] for p in board["panels"]}) == len(PANELS)
    cells = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        cell = (g["x"], g["y"])
        assert cell not in cells
        cells.add(cell)
        assert panel["targets"]
        for target in panel["targets"]:
            check_expr(target["expr"])
    processing = next(p for p in board["panels"] if p["title"].startswith("Processing"))
    assert [t["legendFormat"] for t in processing["targets"]] == ["p50", "p95", "p99"]
    assert processing["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 2000


def test_a_plan_with_its_own_rules_exports_them(tmp_path: Path) -> None:
    plan = load_plan(
        write_plan(
            tmp_path,
            "  window: 10m\n  alerts:\n    - {name: Deep, metric: queue_depth, op: '>=', "
            "threshold: 50, for: 2m, severity: info}\n",
        )
    )
    (rule,) = yaml.safe_load(render_rules(plan))["groups"][0]["rules"]
    assert rule["expr"] == "max(constellation_queue_depth) >= 50"
    assert (rule["for"], rule["labels"]["severity"]) == ("2m", "info")


def test_the_html_report_contains_a_plot_per_panel(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    clock = [1_700_000_000.0]
    writer = SnapshotWriter(
        MetricsStore(plan.metrics_path),
        plan,
        "worker",
        lambda: clock[0],
        deployment=identify(plan, services),
    )
    metrics = ServiceMetrics()
    for step in range(12):
        for _ in range(5):
            metrics.job_done(PROCESSED, 0.1 * step, truncated=False)
        metrics.job_failed("not_json", dead_lettered=True)
        metrics.batch_done(BatchTiming(6, 5, 5, 0.05, 0.01, 0.1))
        metrics.observe_query(0.02)
        metrics.set_queue(100 - step, 2)
        metrics.set_dead_letter(step)
        metrics.set_index_size(1, 5 * step)
        writer.write(metrics.samples())
        clock[0] += 10
    data = read_dashboard(plan, services, range_seconds=120, points=12, now=clock[0])  # type: ignore[arg-type]
    assert all(panel.series for panel in data.panels), [
        p.panel.key for p in data.panels if not p.series
    ]
    page = write_report(data, tmp_path / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', page)
    assert [alt for _, alt in images] == [p.title.replace("&", "&amp;") for p in PANELS]
    assert all(base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n") for png, _ in images)
    assert "processed / skipped / failed" in page
