"""Faults: worker processes. One killed in the middle of a batch and restarted, two sharing
one SQS queue, several starting together on a fresh data folder. None may lose a job or store
one twice.

Worker processes are real ``constellation worker run`` commands, loading their own model.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from constellation.services import Services
from tests.integration.conftest import (
    FAST,
    Backend,
    job_body,
    provision_plan,
    send,
    unique_names,
    wait_for,
    write_plan,
)
from tests.integration.faults_support import StartWorker, assert_all_stored_once, note_text
from tests.support.cli import REPO
from tests.support.model import MODEL, MODEL_PACKAGE

pytestmark = [pytest.mark.servers, pytest.mark.model]


# a. SIGKILL in the middle of a batch ---------------------------------------------------------
def test_worker_killed_mid_batch_then_restarted_stores_every_job_exactly_once(
    backend: Backend, worker_process: StartWorker
) -> None:
    # writes gathered two batches at a time: several stores, so the kill can fall between them
    plan_path = backend.plan({"consumer": {"max_batch_size": 4, "max_write_batch": 8}})
    plan = provision_plan(plan_path)
    n = 32
    # Several sentences per note, so a batch takes the model long enough to be caught in flight.
    bodies = [job_body(f"user-{i % 5}", f"note-{i}", note_text(i, 3), 1_000 + i) for i in range(n)]

    with Services(plan, write=False) as services:
        send(services.queue, bodies)
        first = worker_process(plan_path, "--log-json")

        def mid_batch() -> bool:
            assert first.process.poll() is None, first.stderr
            depth = services.queue.depth()
            return depth.total < n and depth.in_flight > 0

        wait_for(mid_batch, 120, "some jobs are stored and a batch is in flight", 0.01)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        left = services.queue.depth()
    assert first.process.returncode == -signal.SIGKILL
    assert 0 < left.total < n, left
    assert left.in_flight > 0  # the killed batch: hidden until its visibility timeout ends

    second = worker_process(plan_path, "--drain", "--json")
    assert second.wait(120) == 0, second.stderr
    summary = second.summary()
    assert summary["reason"] == "drained"
    stats = summary["stats"]
    # The killed worker's messages came back and were handled: stored, or skipped when the
    # killed worker had stored them but not yet deleted their messages.
    assert summary["received"] >= left.total
    assert stats["processed"] + stats["skipped"] == summary["received"]
    assert (stats["failed"], stats["dead_lettered"]) == ({}, {})
    assert_all_stored_once(plan, bodies)


# e. two worker processes share one SQS queue --------------------------------------------------
def test_two_worker_processes_on_one_sqs_queue_store_every_job_once(
    servers_env: dict[str, str], tmp_path: Path, worker_process: StartWorker
) -> None:
    n = 200
    plan_path = write_plan(
        tmp_path / "staging.yaml",
        "staging.yaml",
        unique_names(),
        FAST,
        # no failures are expected: a long visibility timeout rules out redelivery by slowness
        {"queue": {"visibility_timeout": 30}, "consumer": {"max_batch_size": 10}},
    )
    plan = provision_plan(plan_path)
    bodies = [job_body(f"user-{i % 7}", f"note-{i}", note_text(i), 5_000 + i) for i in range(n)]
    with Services(plan, write=False) as services:
        send(services.queue, bodies)
        workers = [worker_process(plan_path, "--json") for _ in range(2)]

        def all_stored() -> bool:
            for w in workers:
                assert w.process.poll() is None, w.stderr
            return services.queue.depth().total == 0 and services.index().count() == n

        wait_for(all_stored, 240, f"{n} jobs are stored", 0.2)
    for w in workers:
        w.process.send_signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(60) == 0, w.stderr
    summaries = [w.summary() for w in workers]

    assert [s["reason"] for s in summaries] == ["stopped", "stopped"]
    assert all(s["received"] > 0 for s in summaries), summaries  # both took part
    # Delivery is at least once: SQS, and moto (whose receive is not atomic across concurrent
    # calls), may now and then hand one message to both workers. Every delivery must end in a
    # stored or a skipped job, never in a failure or a second record.
    received = sum(s["received"] for s in summaries)
    assert n <= received <= n + 10, summaries
    assert sum(s["stats"]["processed"] + s["stats"]["skipped"] for s in summaries) == received
    assert [s["stats"]["failed"] for s in summaries] == [{}, {}]
    assert_all_stored_once(plan, bodies)


# Worker processes started together on a fresh data folder (scaling to two workers, a
# supervisor starting several) all create the migration state's tables at once; this once lost
# the race with "table ... already exists" (SQLAlchemy's look-then-create). The tables are now
# created with CREATE TABLE IF NOT EXISTS in one transaction (phases/db.py, create_tables).
STARTUP = """
import os, sys, time
from constellation.plan import load_plan
from constellation.ledger.failures import FailureLog
from constellation.ledger.state import open_state

plan = load_plan(sys.argv[1])
folder = os.path.dirname(sys.argv[1])
open(os.path.join(folder, f"ready-{os.getpid()}"), "w").close()
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.0005)
# what `constellation worker run` opens before its first receive (phases/context.py)
open_state(plan).close()
FailureLog.for_plan(plan).close()
"""


def test_worker_processes_starting_together_all_open_the_migration_state(tmp_path: Path) -> None:
    for attempt in range(2):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        plan = write_plan(folder / "local.yaml", "local.yaml")
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", STARTUP, str(plan)],
                cwd=REPO,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]

        def ready(folder: Path = folder) -> bool:
            return len(list(folder.glob("ready-*"))) == 4

        wait_for(ready, 60, "all processes are ready")
        (folder / "go").touch()  # all open the state at the same moment
        errors = [p.communicate(timeout=60)[1] for p in processes]
        # the cause, e.g. "(sqlite3.OperationalError) table migration_cursor already exists"
        failed = [
            next((line for line in e.splitlines() if "OperationalError)" in line), e[-300:])
            for p, e in zip(processes, errors, strict=True)
            if p.returncode
        ]
        assert failed == [], f"{len(failed)} of 4 processes could not open the state: {failed}"


# f. the model in processes of its own: a SIGKILLed worker leaves none behind ------------------
def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def test_a_killed_worker_leaves_no_model_process_behind_and_a_restart_stores_every_job(
    tmp_path: Path, worker_process: StartWorker
) -> None:
    plan_path = write_plan(
        tmp_path / "local.yaml",
        "local.yaml",
        FAST,
        {"models": {1: {"name": MODEL, "package": MODEL_PACKAGE, "processes": 2}}},
    )
    plan = provision_plan(plan_path)
    bodies = [job_body(f"user-{i % 3}", f"note-{i}", note_text(i, 2), 1_000 + i) for i in range(24)]
    with Services(plan, write=False) as services:
        send(services.queue, bodies)
        first = worker_process(plan_path)

        def storing() -> bool:
            assert first.process.poll() is None, first.stderr
            return services.queue.depth().total < len(bodies)

        wait_for(storing, 180, "the model processes embed and some jobs are stored", 0.05)
        children = _children(first.process.pid)
        assert len(children) >= 2, children  # the two model processes (and Python's tracker)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    wait_for(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in children),
        30,
        "the model processes of the killed worker exit",
    )
    second = worker_process(plan_path, "--drain", "--json")
    assert second.wait(180) == 0, second.stderr
    assert_all_stored_once(plan, bodies)
