"""Faults: the Chroma server stops mid-run and starts again. While it is down nothing leaves the
queue (no delete, no dead letter); once it is back the worker resumes and stores every job once,
with a SQLite queue and with SQS (a moto server).

The in-process worker gets the session's loaded model through :class:`ModelServices`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.queues.port import BatchResult, Queue
from constellation.services import Services
from constellation.worker import RunSummary, build_worker
from tests.integration.conftest import (
    FAST,
    ModelServices,
    job_body,
    provision_plan,
    send,
    unique_names,
    wait_for,
    write_plan,
)
from tests.integration.faults_support import assert_all_stored_once, note_text
from tests.support import servers
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.servers, pytest.mark.model]


# c. the Chroma server goes away and comes back ------------------------------------------------
@pytest.fixture
def private_chroma(tmp_path: Path) -> Iterator[ManagedServer]:
    """A Chroma server of this test alone: it is stopped and started again mid-run."""
    server = servers.chroma_server(tmp_path / "chroma-data", tmp_path)
    server.start()
    yield server
    server.stop()


class DeleteLog:
    """A queue that remembers every receipt deleted through it (and delegates everything)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.deleted: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)

    def delete(self, receipt: str) -> None:
        self.deleted.append(receipt)
        self.queue.delete(receipt)

    def delete_batch(self, receipts: Sequence[str]) -> BatchResult:
        self.deleted += receipts
        return self.queue.delete_batch(receipts)


class WatchedServices(ModelServices):
    """The worker's adapters, with its embed queue watched for deletes."""

    @cached_property
    def queue(self) -> Queue:
        return DeleteLog(self.broker.open(self.plan.queue.name))


@pytest.mark.parametrize("queue", ["sqlite", "sqs"])
def test_while_the_chroma_server_is_down_nothing_leaves_the_queue_and_the_worker_resumes(
    queue: str,
    private_chroma: ManagedServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    embedder: SentenceTransformerEmbedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="constellation.worker")
    # Retries are spent while the index is down; allow enough that none reaches the DLQ here.
    settings = {
        "queue": {"visibility_timeout": 1},
        "consumer": {"max_retries": 30},
        "index": {"url": private_chroma.url},
    }
    if queue == "sqlite":
        plan_path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST, settings)
    else:
        request.getfixturevalue("servers_env")
        plan_path = write_plan(
            tmp_path / "staging.yaml", "staging.yaml", unique_names(), FAST, settings
        )
    plan = provision_plan(plan_path)
    wave1 = [job_body("erin", f"before-{i}", note_text(i)) for i in range(8)]
    wave2 = [job_body("erin", f"during-{i}", note_text(i + 8)) for i in range(8)]

    def stored(count: int) -> Callable[[], bool]:
        # SQS depth is approximate (moto too can miss a message whose visibility ends while
        # it counts), so the index count decides and the depth only confirms.
        return lambda: probe.index().count() == count and probe.queue.depth().total == 0

    with WatchedServices(plan, embedder) as services, Services(plan, write=False) as probe:
        worker = build_worker(plan, services)
        deletes = services.queue
        assert isinstance(deletes, DeleteLog)
        result: list[RunSummary] = []
        runner = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
        runner.start()
        try:
            send(probe.queue, wave1)
            wait_for(stored(8), 60, "the first wave is stored")
            wait_for(lambda: len(deletes.deleted) == 8, 10, "the first wave is acknowledged")

            private_chroma.stop()
            send(probe.queue, wave2)

            def retried_while_down() -> bool:
                # Never a delete or a dead letter while the index cannot store anything.
                assert len(deletes.deleted) == 8
                assert probe.dead_letter.depth().total == 0
                return worker.stats.failures >= 2 * len(wave2)

            wait_for(retried_while_down, 60, "every job of the second wave was tried twice")
            assert worker.stats.processed == 8
            assert set(worker.stats.failed) <= {"index_error", "timeout"}
            # the log says why, at warning level, once per kind (not once per job)
            warned = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert warned and all("job(s) failed" in r.getMessage() for r in warned)
            assert "Chroma server at" in warned[0].getMessage(), warned[0].getMessage()
            assert len(warned) <= len(worker.stats.failed)

            private_chroma.start()
            wait_for(stored(16), 60, "the second wave is stored")
        finally:
            worker.stop()
            runner.join(30)
    assert result and result[0].reason == "stopped"
    assert worker.stats.processed == 16
    assert len(deletes.deleted) == 16
    assert worker.stats.dead_lettered == Counter()
    assert_all_stored_once(plan, wave1 + wave2)
