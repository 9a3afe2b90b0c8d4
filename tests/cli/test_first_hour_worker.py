"""The operator's first hour, the worker: a second writer on the embedded index is refused at
start, and a run in which every job failed exits non-zero (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

from constellation.index.lock import LOCK_FILE_NAME
from constellation.jobs import Job
from constellation.plan import load_plan
from constellation.services import Services
from tests.integration.conftest import FAST, WorkerProcess, provision_plan, wait_for, write_plan
from tests.support.cli import Invoke


def _plan(tmp_path: Path, *overrides: dict[str, object]) -> Path:
    path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST, *overrides)
    provision_plan(path)
    return path


def test_a_second_worker_on_the_embedded_index_is_refused_at_start(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan_path = _plan(tmp_path)
    plan = load_plan(plan_path)
    with Services(plan) as services:
        services.queue.send(Job("u1", "n1", "buy milk", 1, 1).to_body())
    first = WorkerProcess(plan_path, logs=tmp_path / "logs")
    try:
        lock_file = plan.index_path / LOCK_FILE_NAME
        wait_for(
            lambda: lock_file.exists() and lock_file.read_text().strip() == str(first.process.pid),
            60,
            "the first worker holds the writer lock",
        )
        second = invoke("--plan", str(plan_path), "worker", "run", "--drain", "--json")
    finally:
        first.stop()

    assert second.exit_code == 1
    assert second.stdout == ""  # no summary: it never ran
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(f"error: the embedded index at {plan.index_path} is in use")
    assert f"(pid {first.process.pid})" in lines[0]
    assert "chroma run" in lines[0] and "index.url" in lines[0]


def test_a_run_in_which_every_job_failed_exits_non_zero(invoke: Invoke, tmp_path: Path) -> None:
    # A model that cannot load: every job fails (model_error) and is left for redelivery.
    plan_path = _plan(tmp_path, {"models": {1: {"package": None, "path": str(tmp_path / "gone")}}})
    with Services(load_plan(plan_path)) as services:
        for n in range(3):
            services.queue.send(Job("u1", f"n{n}", f"note {n}", 1, 1).to_body())

    result = invoke("--plan", str(plan_path), "worker", "run", "--max-messages", "3", "--json")

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["received"] == 3 and summary["stats"]["failed"] == {"model_error": 3}
    assert result.stderr.strip().splitlines()[-1] == (
        "error: every job this run received failed (3 model_error); nothing was stored. "
        "See why with `constellation recover` and `constellation stats`"
    )
    # nothing was lost: the three jobs wait in the queue for a worker that can embed them
    with Services(load_plan(plan_path)) as services:
        depth = services.queue.depth()
    assert depth.total == 3


def test_a_run_that_stored_something_exits_zero_even_with_failures(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan_path = _plan(tmp_path)
    with Services(load_plan(plan_path)) as services:
        services.queue.send("not json")
        services.queue.send(Job("u1", "n1", "", 1, 1).to_body())  # emptied: ends well
    result = invoke("--plan", str(plan_path), "worker", "run", "--drain", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["stats"]
    assert stats["empty"] == 1 and stats["failed"] == {"not_json": 1}
