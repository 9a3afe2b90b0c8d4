"""The main job: `constellation demo` on plans/local.yaml in an empty folder, real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Invoke

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]


def test_demo_runs_the_whole_migration_at_a_small_size(invoke: Invoke, local_plan: Path) -> None:
    # A loaded CI machine must not turn a slow shadow search into a counted error, nor fail
    # phase 2's gates by slowness: too few searches within the dwell, a high p95 (this test is
    # about the walk; the gates have their own tests).
    plan = yaml.safe_load(local_plan.read_text())
    traffic = plan["migration"]["traffic"]
    traffic.update(shadow_timeout="30s", max_p95_latency_ms=30_000, min_comparisons=3)
    local_plan.write_text(yaml.safe_dump(plan))
    result = invoke("--plan", str(local_plan), "demo", "--notes", "60", "--users", "5", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["complete"] is True
    assert summary["migrated"] == 60
    # the sample app's old system prepares text its own way: close to the new one, not equal
    assert 0.7 <= summary["mean_overlap"] < 1.0
    assert summary["dead_letters"] == 0 and summary["errors"] == 0
    assert summary["old_p95_ms"] > 0 and summary["new_p95_ms"] > 0
    assert [p[0] for p in summary["phases"]] == [
        "sample app",
        "provision",
        "phase 1 parallel write",
        "phase 2 read migration",
        "phase 3 full cutover",
        "phase 4 cleanup",
    ]

    status = json.loads(invoke("--plan", str(local_plan), "migrate", "status", "--json").stdout)
    assert status["state"]["phase"] == 4
    assert status["state"]["status"] == "complete"
    assert status["state"]["write_mode"] == "new"
    assert status["next_step"] == "nothing: the migration is complete"
    assert [e["command"] for e in status["journal"]][-1] == "migrate phase 4"

    check = invoke(
        "--plan", str(local_plan), "check", "consistency", "--sample-size", "20", "--json"
    )
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["passed"] is True

    # the app's edits reached its own notes table too: nothing to repair after a clean demo
    recovered = invoke("--plan", str(local_plan), "recover", "--json")
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["affected"] == []

    # from phase 4 a quick rollback writes dual again, and says so
    rolled = invoke("--plan", str(local_plan), "rollback", "quick", "--force", "--json")
    assert rolled.exit_code == 0, rolled.output
    report = json.loads(rolled.stdout)
    assert report["state"]["write_mode"] == "dual" and report["state"]["read_traffic"] == 0.0
    assert "writes go to both systems (dual)" in report["message"]
    assert report["caught_up"]["written"] == 0  # the demo's edits were made before phase 4
    status = json.loads(invoke("--plan", str(local_plan), "migrate", "status", "--json").stdout)
    assert status["state"]["write_mode"] == "dual"

    # a data folder the demo did not make is never touched
    (local_plan.parent / "data" / ".constellation-demo").unlink()
    again = invoke("--plan", str(local_plan), "demo", "--notes", "60")
    assert again.exit_code == 1
    assert "is not empty and was not made by the demo" in again.stderr and "--reset" in again.stderr
