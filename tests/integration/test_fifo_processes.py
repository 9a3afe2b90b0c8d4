"""FIFO queues with three worker processes: interleaved edits of the same notes, sent while the
workers run, end with every note at its newest text, on SQS FIFO (moto) and on the SQLite
queue's FIFO mode (both with `chroma run`, which several processes may write to at once).

Without FIFO delivery two processes can hold two edits of one note at once, and the one with
the older edit can write last (Chroma has no conditional write). A FIFO queue hands one
note's edits out one at a time and in order, which closes that window.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from constellation import records
from constellation.jobs import Job
from constellation.preprocess import normalize
from constellation.producer import job_message
from constellation.services import Services
from tests.integration.conftest import FAST, provision_plan, wait_for, write_plan
from tests.integration.faults_support import StartWorker, note_text
from tests.support.model import MODEL
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.servers, pytest.mark.model]

NOTES, EDITS = 12, 5


def fifo_plan(folder: Path, kind: str, moto: ManagedServer, chroma: ManagedServer) -> Path:
    suffix = uuid.uuid4().hex[:10]
    queue: dict[str, Any] = {
        "fifo": True,
        "name": f"embed-{suffix}.fifo",
        "dead_letter": f"dead-{suffix}.fifo",
        "visibility_timeout": 5,
    }
    index = {"name": f"fifo-notes-{suffix}", "url": chroma.url}
    if kind == "sqs":
        base = "staging.yaml"
        queue["endpoint_url"] = moto.url
    else:
        base = "local.yaml"
    # batches of 3 from 12 notes: a batch rarely holds two edits of one note, so the three
    # processes really do contend for the same notes
    consumer = {"max_batch_size": 3, "max_concurrency": 2}
    return write_plan(
        folder / base, base, FAST, {"queue": queue, "index": index, "consumer": consumer}
    )


@pytest.mark.parametrize("kind", ["sqs", "sqlite"])
def test_three_workers_on_a_fifo_queue_leave_every_note_at_its_newest_text(
    kind: str,
    moto: ManagedServer,
    chroma_server: ManagedServer,
    tmp_path: Path,
    worker_process: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("CHROMA_URL", chroma_server.url)
    plan_path = fifo_plan(tmp_path, kind, moto, chroma_server)
    plan = provision_plan(plan_path)
    newest: dict[str, Job] = {}
    with Services(plan, write=False) as services:
        info = services.broker.inspect(plan.queue.name)
        assert info is not None and info.fifo
        workers = [worker_process(plan_path, "--json") for _ in range(3)]
        # edits round by round, each round interleaving every note, while the workers run
        for edit in range(EDITS):
            jobs = [
                Job(
                    f"user-{n % 3}",
                    f"note-{n}",
                    f"{note_text(n + edit, 2)} (edit {edit})",
                    1_000 * (edit + 1) + n,
                    1,
                )
                for n in range(NOTES)
            ]
            assert services.queue.send_batch([job_message(job) for job in jobs]).ok
            newest.update({job.note_id: job for job in jobs})
            time.sleep(0.3)

        def drained() -> bool:
            for w in workers:
                assert w.process.poll() is None, w.stderr[-3000:]
            return services.queue.depth().total == 0

        wait_for(drained, 300, "every edit is handled", 0.2)
    for w in workers:
        w.process.send_signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(60) == 0, w.stderr[-3000:]
    summaries = [w.summary() for w in workers]
    assert sum(s["received"] > 0 for s in summaries) >= 2, summaries  # they shared the work
    assert all(s["stats"]["failed"] == {} for s in summaries), summaries

    with Services(plan, write=False) as services:
        ids = {records.record_id(j.user_id, j.note_id, 1): j for j in newest.values()}
        stored = services.index().get(list(ids))
        assert services.index().count() == NOTES
        assert services.dead_letter.depth().total == 0
    for record_id, job in ids.items():
        meta = stored[record_id].metadata
        assert meta["created"] == job.created, (job.note_id, meta["created"], job.created)
        assert meta[records.SOURCE] == records.source_hash(normalize(job.text), MODEL)
