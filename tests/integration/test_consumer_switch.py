"""The consumer switch against a live worker process, and `--from-dlq` on SQS with a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from constellation.jobs import Job
from constellation.queues.port import Outgoing
from constellation.wiring.migration import Migration
from constellation.worker import build_worker
from phases.operate.provision import provision
from phases.operate.requeue import requeue
from tests.support.migration import rig
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.model]


def wait_until(condition, timeout: float = 60.0, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def test_consumer_switch_pauses_a_live_worker_within_one_poll_and_resumes_it(
    tmp_path: Path,
) -> None:
    plan, services = rig(
        tmp_path,
        {"consumer": {"max_batch_size": 4, "max_concurrency": 1, "poll_interval": "0.2s"}},
    )
    provision(plan, services)
    # A backlog the worker cannot finish before the pause takes hold: version 1 on ONNX
    # Runtime stores these short notes at hundreds a second (600 were gone before one CI run's
    # pause).
    jobs = [
        Outgoing(Job("u", f"n{i}", f"note number {i} about the weather", 1, 1).to_body())
        for i in range(5000)
    ]
    services.queue.send_batch(jobs)
    services.close()  # the worker process takes the embedded index's writer lock
    m = Migration(plan, services)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--plan", str(plan.file), "worker", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        left = lambda: services.queue.depth().total  # noqa: E731
        assert wait_until(lambda: left() < len(jobs) - 10, timeout=90), "the worker never started"
        m.state.change("consumer disable", "test", consumer_enabled=False)
        disabled_at = time.monotonic()
        # Paused once a poll (0.2 s) has passed and the batch it held is stored and deleted:
        # nothing is received any more, so nothing is in flight.
        assert wait_until(
            lambda: time.monotonic() > disabled_at + 0.5 and services.queue.depth().in_flight == 0,
            timeout=60,
        ), "the worker kept messages in flight after the consumer was disabled"
        paused_at = left()
        time.sleep(2.0)  # ten polls: what would be taken if the pause did not hold
        assert left() == paused_at > 0  # nothing taken while disabled
        assert worker.poll() is None  # waiting, not exited
        m.state.change("consumer enable", "test", consumer_enabled=True)
        assert wait_until(lambda: left() < paused_at, timeout=10)
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err.decode()[-2000:]
    m.close()
    services.close()


@pytest.mark.servers
def test_from_dlq_on_sqs_with_a_crash_between_send_and_delete_stores_every_job_once(
    tmp_path: Path, moto: ManagedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = uuid.uuid4().hex[:8]
    plan, services = rig(
        tmp_path,
        {
            "queue": {
                "adapter": "sqs",
                "endpoint_url": moto.url,
                "region": "us-east-1",
                "name": f"q-{suffix}",
                "dead_letter": f"dlq-{suffix}",
            }
        },
    )
    provision(plan, services)
    bodies = [Job("u", f"n{i}", f"dead letter {i}", 1, 1).to_body() for i in range(25)]
    services.dead_letter.send_batch([Outgoing(b, {"reason": "model_error"}) for b in bodies])
    m = Migration(plan, services)

    dlq = services.dead_letter
    real_delete = dlq.delete_batch
    calls = {"n": 0}

    def crash_on_second_delete(receipts):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("crash between send and delete")
        return real_delete(receipts)

    monkeypatch.setattr(dlq, "delete_batch", crash_on_second_delete)
    with pytest.raises(KeyboardInterrupt):
        requeue(m, from_dlq=True)
    monkeypatch.setattr(dlq, "delete_batch", real_delete)
    # the crashed batch is in both queues: sent, not yet deleted (never in neither)
    assert services.queue.depth().total >= 20
    # after the crash the unfinished batch reappears once its hold (the visibility timeout) ends
    assert wait_until(lambda: dlq.depth().in_flight == 0, timeout=plan.queue.visibility_timeout + 5)
    report = requeue(m, from_dlq=True)
    assert report.left_in_dlq == []
    assert dlq.depth().total == 0
    assert services.queue.depth().total >= 25  # duplicates are possible, losses are not

    worker = build_worker(plan, services, switch=m.state)
    worker.run(drain=True)
    index = services.index()
    assert index.count() == 25
    assert sorted(r.metadata["noteId"] for r in index.scan()) == sorted(f"n{i}" for i in range(25))
    m.close()
    services.close()
