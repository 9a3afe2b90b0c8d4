"""The operator's first hour, ``verify``: in-process on the embedded default unless a worker
runs, a fast named failure when no worker takes the job, and nothing left behind either way
(issue 16)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from constellation.jobs import Job
from constellation.plan import load_plan
from constellation.services import Services
from phases.operate.verify_roundtrip import VERIFY_TEXT, VERIFY_USER
from tests.integration.conftest import FAST, provision_plan, unique_names, write_plan
from tests.support.cli import Invoke
from tests.support.model import real_embedder
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]


def _verify_records(plan_path: Path) -> list[str]:
    plan = load_plan(plan_path)
    with Services(plan, write=False, embedders={1: real_embedder()}) as services:
        vector = services.embedder(1).embed([VERIFY_TEXT])[0]
        return [h.id for h in services.index().query(vector, user_id=VERIFY_USER, top_k=50)]


def test_verify_on_the_embedded_default_runs_in_process_and_removes_an_orphan_first(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan_path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST)
    provision_plan(plan_path)
    # an earlier run's leftover: a test job for the verify user with the same text
    with Services(load_plan(plan_path)) as services:
        services.queue.send(Job(VERIFY_USER, "verify-orphan", VERIFY_TEXT, 1, 1).to_body())

    result = invoke("--plan", str(plan_path), "verify", "--json")

    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["stored by the worker"]["detail"] == "by the in-process worker"
    assert checks["found by a query"]["passed"] is True
    assert checks["test record removed"]["passed"] is True
    assert _verify_records(plan_path) == []
    with Services(load_plan(plan_path)) as services:
        assert services.queue.depth().total == 0


def test_verify_without_a_worker_fails_within_seconds_and_leaves_nothing_behind(
    invoke: Invoke,
    tmp_path: Path,
    moto: ManagedServer,
    chroma_server: ManagedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("CHROMA_URL", chroma_server.url)
    plan_path = write_plan(tmp_path / "staging.yaml", "staging.yaml", unique_names(), FAST)
    provision_plan(plan_path)

    started = time.monotonic()
    result = invoke("--plan", str(plan_path), "verify", "--timeout", "120")
    took = time.monotonic() - started

    assert result.exit_code == 1, result.output
    # the take timeout (10 s) decides, not the 120 s storage timeout; the rest is the model
    # check and the clean-up on a loaded machine
    assert took < 100, took
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: verify failed: taken by a worker: no worker took the test job")
    assert "`constellation worker run`" in last
    assert "nothing left behind" in result.stdout
    with Services(load_plan(plan_path)) as services:
        assert services.queue.depth().total == 0
    assert _verify_records(plan_path) == []


def test_verify_with_the_consumer_disabled_says_so_at_once(invoke: Invoke, tmp_path: Path) -> None:
    plan_path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST)
    provision_plan(plan_path)
    assert invoke("--plan", str(plan_path), "consumer", "disable").exit_code == 0

    result = invoke("--plan", str(plan_path), "verify")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: verify failed: round trip: the consumer is disabled: no worker takes jobs; "
        "run `constellation consumer enable` first"
    )
    with Services(load_plan(plan_path)) as services:
        assert services.queue.depth().total == 0
