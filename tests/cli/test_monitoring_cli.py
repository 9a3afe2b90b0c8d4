"""`stats`, `monitor`, `dashboard` and `monitoring export` through the CLI.

The metrics come from a real worker run (real SQLite queues, fake model, in-memory index) that
recorded its snapshots in the plan's metrics file; the commands read them as an operator would.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

from constellation.wiring.worker import run_worker
from tests.support.cli import REPO, Invoke
from tests.support.http import local_server
from tests.support.monitoring import MALFORMED, open_stub, send_mix, write_plan
from tests.support.servers import free_port


class Enabled:
    def consumer_enabled(self) -> bool:
        return True


def worked(folder: Path, good: int = 12, bad: dict[str, str] = MALFORMED, extra: str = "") -> Path:
    """A plan whose worker has drained ``good`` jobs and the malformed ones."""
    folder.mkdir(exist_ok=True)
    plan_path = write_plan(folder, extra)
    plan, services = open_stub(plan_path)
    send_mix(services.queue, good, bad)
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    services.close()
    return plan_path


def test_stats_json_reports_what_the_worker_did(invoke: Invoke, tmp_path: Path) -> None:
    plan = worked(tmp_path)
    result = invoke("--plan", str(plan), "stats", "--json", "--window", "10m")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["jobs"]["processed"] == 12
    assert stats["jobs"]["failed"] == 3
    assert stats["jobs"]["failed_by_reason"] == dict.fromkeys(sorted(MALFORMED), 1)
    assert stats["queue"]["total"] == 0 and stats["dead_letter"]["total"] == 3
    assert stats["window"]["seconds"] == 600
    assert stats["window"]["error_rate"] == round(3 / 15, 4)
    assert set(stats["window"]["processing_ms"]) == {"p50", "p95", "p99"}
    assert all(v > 0 for v in stats["window"]["processing_ms"].values())
    # The embedded index was never provisioned here: the last recorded size stands in.
    assert stats["index_size"] == {"1": 12}
    assert "index size of v1 is the last recorded one" in result.stderr


def test_stats_tables(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("stats", "--plan", str(worked(tmp_path)))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for label, value in [
        ("processed", "12"),
        ("failed attempts", "3"),
        ("failed: not_json", "1"),
        ("dead-letter queue embed-dead-letter", "3"),
        ("index records v1", "12"),
    ]:
        assert any(re.search(rf"│\s+{re.escape(label)}\s+│\s+{value} │", line) for line in lines), (
            label
        )
    assert "batch processing ms (full → stored)" in result.stdout
    assert "searchable after ms (enqueue → stored)" in result.stdout


def test_stats_before_any_worker_says_so(invoke: Invoke, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    result = invoke("--plan", str(plan), "stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["jobs"]["processed"] == 0
    assert "no metrics recorded yet" in result.stderr
    assert not (tmp_path / "data").exists()  # reading created nothing


def test_a_bad_window_is_refused(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--plan", str(write_plan(tmp_path)), "stats", "--window", "soon")
    assert result.exit_code == 2
    assert "not a duration" in result.stderr


def test_monitor_once_fires_the_dead_letter_rule_and_calls_the_webhook(
    invoke: Invoke, tmp_path: Path
) -> None:
    with local_server(lambda request: (200, {"ok": True})) as hook:
        plan = worked(tmp_path, extra=f"  webhook_url: {hook.url}/alerts\n")
        first = invoke("--plan", str(plan), "monitor", "--once")
        second = invoke("--plan", str(plan), "monitor", "--once", "--json")
    assert first.exit_code == 1, first.output
    row = next(line for line in first.stdout.splitlines() if "EmbedDeadLetters" in line)
    assert "firing" in row and "dead_letter_depth > 0" in row
    for name in ("EmbedQueueBacklog", "EmbedErrorRate", "EmbedSlowProcessing"):
        assert name in first.stdout
    assert "EmbedDeadLetters: ok → firing" in first.stderr
    assert first.stderr.rstrip().endswith("firing: EmbedDeadLetters")
    # 3 of 15 jobs failed: the error-rate rule holds, but only pending for its 5 minutes
    assert "EmbedErrorRate: ok → pending" in first.stderr

    assert second.exit_code == 1
    report = json.loads(second.stdout)
    assert report["firing"] == ["EmbedDeadLetters"]
    assert report["changes"] == []  # nothing changed since the first run
    posted = [r.json() for r in hook.requests]
    assert [(p["alert"], p["state"]) for p in posted] == [
        ("EmbedErrorRate", "pending"),
        ("EmbedDeadLetters", "firing"),
    ]
    assert all(p["text"] for p in posted)


def test_a_failing_webhook_is_logged_and_monitor_carries_on(invoke: Invoke, tmp_path: Path) -> None:
    plan = worked(tmp_path, extra=f"  webhook_url: http://127.0.0.1:{free_port()}/down\n")
    result = invoke("--plan", str(plan), "monitor", "--once")
    assert result.exit_code == 1  # because the rule fires, not because the webhook failed
    assert "webhook notification for EmbedDeadLetters failed" in result.stderr
    assert "EmbedDeadLetters" in result.stdout


def test_monitor_once_on_a_healthy_service_exits_zero(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--plan", str(worked(tmp_path, bad={})), "monitor", "--once", "--json")
    assert result.exit_code == 0, result.output
    states = {a["name"]: a["state"] for a in json.loads(result.stdout)["alerts"]}
    assert states["EmbedDeadLetters"] == "ok" and states["EmbedErrorRate"] == "ok"


def test_dashboard_renders_in_the_terminal_and_as_html(invoke: Invoke, tmp_path: Path) -> None:
    plan = worked(tmp_path)
    frame = invoke("--plan", str(plan), "dashboard", "--once", "--range", "10m")
    assert frame.exit_code == 0, frame.output
    for title in (
        "Queue depth",
        "Processing time",
        "Failed jobs by error type",
        "Embedding batch size",
        "Upsert batch size",
        "Query response time",
        "Index size by model version",
    ):
        assert title in frame.stdout, title
    assert "processed 12" in frame.stdout and "not_json" in frame.stdout
    # the run took under a second: one bar per line, at the right end of the time axis
    row = next(line for line in frame.stdout.splitlines() if "│ dead letter" in line)
    assert re.search(r" {50}█ │ +3 │ +3 │$", row), row

    page = tmp_path / "report.html"
    html = invoke("--plan", str(plan), "dashboard", "--html", str(page))
    assert html.exit_code == 0, html.output
    assert html.stdout.strip() == f"wrote {page} (10 plots)"
    assert page.read_text().count('<img src="data:image/png;base64,') == 10


def test_monitoring_export_writes_the_committed_files(
    invoke: Invoke, local_plan: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exported"
    result = invoke("--plan", str(local_plan), "monitoring", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {out / 'alerts.yaml'}",
        f"wrote {out / 'dashboard.json'}",
    ]
    for name in ("alerts.yaml", "dashboard.json"):
        assert (out / name).read_text() == (REPO / "monitoring" / name).read_text()


def test_worker_run_refuses_a_busy_metrics_port(invoke: Invoke, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = invoke(
            "--plan", str(plan), "worker", "run", "--drain", "--metrics-port", str(port)
        )
    assert result.exit_code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "choose another --metrics-port" in result.stderr
