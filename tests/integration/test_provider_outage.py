"""The issue's bar: a 1,000-note backfill through Infinity behind our fault proxy survives a
burst of 429s and a 30-second outage, every job stored exactly once, nothing in the
dead-letter queue but the one input the provider refuses.

The worker is a real ``constellation worker run --drain`` process; the proxy is in this one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from constellation.migration.source import Note, create_notes_table, insert_notes
from constellation.plan import load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.migrate import backfill
from phases.operate.provision import provision
from phases.sample_notes import sample_notes
from tests.integration.conftest import FAST, provider_model, wait_for, write_plan
from tests.support.fault_proxy import FaultProxy

pytestmark = [pytest.mark.servers, pytest.mark.slow]

NOTES = 1000
OUTAGE = 30.0
MARKER = "FORBIDDEN-BY-PROVIDER"


def notes() -> list[Note]:
    """Sample notes cut short (the test is about the provider, not the model's speed), one of
    them holding the input the provider refuses."""
    out = []
    for i, note in enumerate(sample_notes(NOTES, users=10)):
        text = note.content[:160] + (f" {MARKER}" if i == 500 else "")
        out.append(replace(note, content=text))
    return out


def test_a_backfill_survives_429s_and_a_30s_outage_and_loses_nothing(
    fault_proxy: FaultProxy,
    infinity_key: str,
    worker_process: Any,
    tmp_path: Path,
) -> None:
    consumer = {"max_batch_size": 20, "max_concurrency": 4, "max_retries": 2}
    provider = {
        "texts_per_request": 32,
        "requests_in_flight": 2,
        "deadline": "20s",
        "failures_to_open": 3,
    }
    path = write_plan(
        tmp_path / "plan.yaml",
        "local.yaml",
        FAST,
        {"consumer": consumer},
        provider_model(fault_proxy.url, **provider),
    )
    plan = load_plan(path)
    fault_proxy.refuse_marker = MARKER
    sample = notes()
    with Services(plan) as services, Migration(plan, services) as m:
        provision(plan, services)
        create_notes_table(plan.source_url)
        insert_notes(m.source, sample)
        report = backfill.backfill(m.source, services.queue, m.state, [3])
        assert report.sent == NOTES

    worker = worker_process(path, "--drain", "--json")
    with Services(plan, write=False) as services:  # the worker process holds the writer lock
        index = services.index(3)

        def stored(count: int) -> bool:
            assert worker.process.poll() is None, worker.stderr[-3000:]
            return index.count() >= count

        wait_for(lambda: stored(150), 180, "150 notes were stored")
        fault_proxy.rate_limit(12, retry_after=1.0)  # a burst of 429s
        wait_for(lambda: fault_proxy.answered(429) == 12, 60, "the 429 burst was answered")
        wait_for(lambda: stored(400), 180, "400 notes were stored")

        fault_proxy.down()  # the provider is out: connections refused
        down_at = time.monotonic()
        wait_for(lambda: "unavailable" in worker.stderr, 60, "the worker saw the outage")
        # batches whose vectors came before the outage finish storing; the rest go back
        wait_for(lambda: services.queue.depth().in_flight == 0, 60, "no job was held")
        stored_during = index.count()
        # while it is out: nothing is received, stored or dead-lettered
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        assert index.count() == stored_during
        assert services.queue.depth().in_flight == 0
        assert services.dead_letter.depth().total == 0
        fault_proxy.up()

        assert worker.wait(300) == 0, worker.stderr[-3000:]
        summary = worker.summary()
        stats = summary["stats"]
        # exactly once: 999 embedded and stored, none embedded again and skipped
        assert stats["processed"] == NOTES - 1 and stats["skipped"] == 0, stats
        assert stats["deferred"] > 0 and stats["dead_lettered"] == {"input_refused": 1}
        assert index.count() == NOTES - 1
        assert services.queue.depth().total == 0
        (letter,) = services.dead_letter.receive(max_messages=10)
        assert MARKER in letter.body and letter.attributes["reason"] == "input_refused"
        assert f"it contains '{MARKER}'" in letter.attributes["detail"]
    assert "not receiving (the jobs wait on the queue)" in worker.stderr
    assert "answers again; resuming after" in worker.stderr
    assert infinity_key not in worker.stderr + worker.stdout_path.read_text()
