"""The console's JSON and page over real HTTP (``constellation serve --worker``): the same
documents as the commands' ``--json``, the page without a token but with a strict policy, and
the actions: write token only, a reason required, refused with the command's own message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from constellation.api.page import CONTENT_SECURITY_POLICY
from tests.serve.conftest import AppServer
from tests.support.serve import READ_TOKEN, ServeProcess

pytestmark = [pytest.mark.model]


def test_the_page_and_its_files_need_no_token_and_carry_a_strict_policy(
    serve: ServeProcess,
) -> None:
    for path in ("/", "/console", "/console/"):
        page = serve.call("GET", path, token=None)
        assert page.status == 200, page
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert page.headers["x-frame-options"] == "DENY"
        html = str(page.body)
        # no inline script or style: every script and sheet comes from a file of this origin
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " on" + "click=" not in html
    for asset, kind in [
        ("/console/static/console.js", "javascript"),
        ("/console/static/console.css", "text/css"),
        ("/console/static/vendor/uplot.iife.min.js", "javascript"),
    ]:
        answer = serve.call("GET", asset, token=None)
        assert answer.status == 200 and kind in answer.headers["content-type"], asset
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert serve.call("GET", "/console/static/../../stats", token=None).status in (401, 404)
    assert serve.call("GET", "/console/static/missing.js", token=None).status == 404


def test_the_data_needs_a_token(serve: ServeProcess) -> None:
    for path in ("/migration", "/migration/comparisons", "/models", "/alerts", "/dashboard"):
        assert serve.call("GET", path, token=None).status == 401, path
        assert serve.call("GET", path, token=READ_TOKEN).status == 200, path


def test_migration_is_migrate_status_json(app: AppServer, invoke: Any) -> None:
    answer = app.serve.call("GET", "/migration", token=READ_TOKEN)
    assert answer.status == 200, answer
    cli = invoke("--plan", str(app.plan_path), "migrate", "status", "--json")
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    assert answer.body.keys() == expected.keys()
    for key in ("plan", "environment", "summary", "state", "next_step"):
        assert answer.body[key] == expected[key], key
    assert [e["id"] for e in answer.body["journal"]] == [e["id"] for e in expected["journal"]]
    assert answer.body["timeline"]["steps"] == app.plan.migration.traffic.steps
    assert answer.body["journal"][-1]["who"]  # every entry says who made it


def test_models_is_model_status_json(app: AppServer, invoke: Any) -> None:
    answer = app.serve.call("GET", "/models", token=READ_TOKEN)
    cli = invoke("--plan", str(app.plan_path), "model", "status", "--json")
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    assert answer.body["records_by_version"] == expected["records_by_version"]
    assert answer.body["records_by_version"]["1"] >= len(app.notes)
    assert answer.body["message"] == expected["message"]


def test_alerts_and_dashboard(app: AppServer) -> None:
    alerts = app.serve.call("GET", "/alerts", token=READ_TOKEN).body
    assert [a["name"] for a in alerts["alerts"]] == [r.name for r in app.plan.monitoring.alerts]
    assert all(a["state"] in ("ok", "pending", "firing") for a in alerts["alerts"])
    board = app.serve.call("GET", "/dashboard?range=600&points=20", token=READ_TOKEN)
    assert board.status == 200, board
    panels = {p["key"]: p for p in board.body["panels"]}
    assert {"queue", "throughput", "stage_time", "index_size"} <= set(panels)
    # the worker embedded the app's notes: the index's size was recorded as it grew
    (point_time, size) = panels["index_size"]["series"]["v1"][-1]
    assert size >= len(app.notes) and point_time.endswith("+00:00")
    bad = app.serve.call("GET", "/dashboard?range=5", token=READ_TOKEN)
    assert bad.status == 422 and bad.body["fields"][0]["field"] == "range"


def test_comparisons_show_old_beside_new(app: AppServer) -> None:
    users = app.users[:3]
    for user in users:
        answer = app.serve.call("POST", "/search", {"text": "python lists", "userId": user})
        assert answer.status == 200, answer
    body: dict[str, Any] = {}
    for _ in range(100):  # the comparisons are logged after the answers
        body = app.serve.call(
            "GET", "/migration/comparisons?range=300&buckets=10", token=READ_TOKEN
        ).body
        if body["total"]["comparisons"] >= len(users):
            break
    assert body["total"]["comparisons"] >= len(users)
    assert len(body["buckets"]) == 10 and sum(body["overlap_histogram"]) >= len(users)
    assert body["buckets"][-1]["comparisons"] >= 1 or body["buckets"][-2]["comparisons"] >= 1
    assert body["old_p50_ms"] is not None and body["new_p50_ms"] is not None


def test_actions_need_a_write_token_and_a_reason(app: AppServer) -> None:
    before = app.serve.call("GET", "/migration", token=READ_TOKEN).body["state"]
    for action in ("promote", "pause", "resume", "abort"):
        refused = app.serve.call("POST", f"/migration/{action}", {"reason": "x"}, token=READ_TOKEN)
        assert refused.status == 403, refused
        assert refused.body["detail"] == (
            f"token 'dashboards' has scope read; /migration/{action} needs write"
        )
        missing = app.serve.call("POST", f"/migration/{action}", {"reason": " "})
        assert missing.status == 422 and missing.body["fields"][0]["field"] == "reason"
        assert app.serve.call("GET", f"/migration/{action}").status == 405  # every write: POST
    unknown = app.serve.call("POST", "/migration/delete-everything", {"reason": "x"})
    assert unknown.status == 422
    wrong = app.serve.call("POST", "/migration/abort", {"reason": 3})
    assert wrong.status == 422 and wrong.body["fields"][0]["field"] == "reason"
    assert app.serve.call("GET", "/migration", token=READ_TOKEN).body["state"] == before


def test_a_dry_run_says_what_would_change_and_changes_nothing(app: AppServer) -> None:
    before = app.serve.call("GET", "/migration", token=READ_TOKEN).body
    answer = app.serve.call("POST", "/migration/abort", {"dryRun": True})
    assert answer.status == 200, answer
    assert answer.body["dry_run"] is True and answer.body["command"] == (
        "constellation rollback quick"
    )
    assert answer.body["message"].startswith("would send every search to the old system")
    assert any("consumer_enabled False" in c for c in answer.body["changes"])
    after = app.serve.call("GET", "/migration", token=READ_TOKEN).body
    assert after["state"] == before["state"] and after["journal"] == before["journal"]


def test_a_refused_action_answers_the_commands_own_message(app: AppServer) -> None:
    with app.migration() as m:
        was = m.state.read()
        m.state.change("test", "phase 1 passed", phase=1, status="passed")
        try:
            refused = app.serve.call("POST", "/migration/pause", {"reason": "hold"})
            assert refused.status == 409, refused
            assert refused.body["error"] == "refused"
            assert refused.body["message"] == (
                "only a running phase 2 can be paused or resumed: the migration is at "
                "phase 1 (parallel write): passed"
            )
            assert refused.body["hint"] == "see `constellation migrate status`"
            # a gate without its evidence: no comparisons since the step began
            m.state.change("test", "fresh window", notes={"step_started_at": m.clock()})
            undecided = app.serve.call("POST", "/migration/promote", {"reason": "go"})
            assert undecided.status == 409, undecided
            assert undecided.body["outcome"] == "inconclusive"
            assert undecided.body["detail"].startswith("gate before 20% could not decide")
            assert m.state.read().read_traffic == 0.0
        finally:
            m.state.change("test", "restore", phase=was.phase, status=was.status)
