"""Every outcome ends the command with its documented exit code, through the real CLI.

0 ok; 1 a gate or check failed; 2 a usage, plan or input-file error; 3 inconclusive; 4 an
outside system could not be reached. The app is the migration rig's (real SQLite queue,
embedded Chroma, state and notes source) with the fake model, which the CLI's own adapters get
too, so each command takes a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from constellation import services as services_module
from constellation.plan import load_plan
from constellation.services import Services
from phases.checks.golden import judged_from_notes, write_golden
from phases.operate.provision import provision
from tests.fakes import RecordingEmbedder
from tests.integration.test_gate_outcomes import replace_with_noise
from tests.support.cli import Invoke
from tests.support.migration import RigMigration, rig, sample_app
from tests.support.servers import free_port


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A provisioned sample app of 300 notes (3 users); the CLI's model is the fake one."""
    monkeypatch.setattr(
        services_module,
        "build_embedder",
        lambda plan, version, loading=None: RecordingEmbedder(
            model_id="all-MiniLM-L6-v2", dimension=384, max_tokens=256
        ),
    )
    plan, services = rig(tmp_path)
    sample = sample_app(plan, services, notes=300, users=3)
    provision(plan, services)
    services.close()
    golden = write_golden(tmp_path / "golden.jsonl", judged_from_notes(sample, count=20))
    return {"plan": str(plan.file), "folder": tmp_path, "golden": str(golden)}


def with_plan(app: dict[str, Any], name: str, changes: dict[str, Any]) -> str:
    """A copy of the app's plan with top-level sections changed."""
    data = yaml.safe_load(Path(app["plan"]).read_text())
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    path = Path(app["folder"]) / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def damage(app: dict[str, Any]) -> None:
    plan = load_plan(app["plan"])
    services = Services(plan, embedders={1: RecordingEmbedder("all-MiniLM-L6-v2", 384, 256)})
    migration = RigMigration(plan, services)
    replace_with_noise(migration, 0.2)
    migration.close()
    services.close()


def test_phase_outcomes_exit_0_then_3_then_1_and_say_so_once(
    invoke: Invoke, app: dict[str, Any]
) -> None:
    plan = app["plan"]
    passed = invoke("--plan", plan, "migrate", "phase", "1", "--wait")
    assert passed.exit_code == 0, passed.output
    assert "phase 1 exit gate passed" in passed.stderr
    assert (
        "capacity: the backfill" in passed.stdout and "recall@10 vs exact search" in passed.stdout
    )

    # no searches since phase 1: the step cannot decide, the traffic stays, exit 3
    waiting = invoke("--plan", plan, "migrate", "phase", "2", "--step")
    assert waiting.exit_code == 3, waiting.output
    assert "traffic step: inconclusive" in waiting.stdout
    assert waiting.stderr.count("error:") == 1 and "warning" not in waiting.output
    assert "gate before 20% could not decide" in waiting.stderr
    assert "`constellation migrate phase 2 --step`" in waiting.stderr

    status = invoke("--plan", plan, "migrate", "status", "--json")
    assert status.exit_code == 0
    recorded = {c["name"]: c for c in json.loads(status.stdout)["checks"]}
    assert recorded["comparisons since the last step"]["outcome"] == "inconclusive"
    assert recorded["recall@10 vs exact search"]["outcome"] == "pass"
    assert recorded["index memory"]["command"] == "migrate phase 1"


def test_recall_and_quality_checks_exit_0_when_healthy_and_1_when_damaged(
    invoke: Invoke, app: dict[str, Any]
) -> None:
    plan = app["plan"]
    assert invoke("--plan", plan, "migrate", "phase", "1", "--wait").exit_code == 0
    healthy = invoke("--plan", plan, "check", "recall", "--json")
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.stdout)["outcome"] == "pass"
    quality = invoke("--plan", plan, "check", "quality", "--golden", app["golden"])
    assert quality.exit_code == 0, quality.output
    header = next(line for line in quality.stdout.splitlines() if "measure" in line)
    assert header.index("old") < header.index("new") < header.index("difference")
    assert "nDCG@10" in quality.stdout and "MRR@10" in quality.stdout

    damage(app)
    damaged = invoke("--plan", plan, "check", "recall")
    assert damaged.exit_code == 1, damaged.output
    assert ": fail" in damaged.stdout
    status = json.loads(invoke("--plan", plan, "migrate", "status", "--json").stdout)
    recorded = {c["name"]: c for c in status["checks"]}
    assert recorded["recall@10 vs exact search"]["outcome"] == "fail"
    assert recorded["recall@10 vs exact search"]["command"] == "check recall"


def test_a_failed_gate_exits_1_printed_once_as_an_error_with_the_next_command(
    invoke: Invoke, app: dict[str, Any]
) -> None:
    plan = app["plan"]
    assert invoke("--plan", plan, "migrate", "phase", "1", "--wait").exit_code == 0
    damage(app)
    failed = invoke("--plan", plan, "migrate", "phase", "1", "--wait")
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.count("error:") == 1 and "warning" not in failed.output
    assert "phase 1 exit fail: recall@10 vs exact search:" in failed.stderr
    assert "`constellation migrate phase 1 --wait`" in failed.stderr


def test_usage_plan_and_judged_file_errors_exit_2(invoke: Invoke, app: dict[str, Any]) -> None:
    plan = app["plan"]
    bad = Path(app["folder"]) / "bad.jsonl"
    bad.write_text('{"userId": "u", "query": "q", "relevant": ["n"]}\n{"userId": "u"}\n')
    result = invoke("--plan", plan, "check", "quality", "--golden", str(bad))
    assert result.exit_code == 2, result.output
    assert f"{bad}:2: query: required" in result.stderr
    assert f"{bad}:2: relevant: required" in result.stderr
    assert invoke("--plan", plan, "check", "recall", "--k", "0").exit_code == 2
    broken = with_plan(app, "broken.yaml", {"migration": {"quality": {"tolerance": "lots"}}})
    result = invoke("--plan", broken, "check", "capacity")
    assert result.exit_code == 2 and "migration.quality.tolerance" in result.stderr


def test_an_unreachable_system_exits_4(invoke: Invoke, app: dict[str, Any]) -> None:
    port = free_port()  # nothing listens there
    index = with_plan(app, "index-down.yaml", {"index": {"url": f"http://127.0.0.1:{port}"}})
    result = invoke("--plan", index, "check", "recall")
    assert result.exit_code == 4, result.output
    assert f"Chroma server at http://127.0.0.1:{port} is unreachable" in result.stderr
    queue = with_plan(
        app,
        "queue-down.yaml",
        {"queue": {"adapter": "sqs", "endpoint_url": f"http://127.0.0.1:{port}", "wait_time": 0}},
    )
    result = invoke("--plan", queue, "describe")
    assert result.exit_code == 4, result.output
    assert "cannot reach SQS" in result.stderr
    folder = Path(app["folder"]) / "not-a-database"
    folder.mkdir()
    source = with_plan(app, "source-down.yaml", {"source": {"url": f"sqlite:///{folder}"}})
    result = invoke("--plan", source, "check", "capacity")
    assert result.exit_code == 4, result.output
    assert "cannot connect to the database" in result.stderr
    prometheus = with_plan(
        app, "prom-down.yaml", {"monitoring": {"prometheus_url": f"http://127.0.0.1:{port}"}}
    )
    result = invoke("--plan", prometheus, "stats")
    assert result.exit_code == 4, result.output
    assert "cannot reach Prometheus" in result.stderr
