"""The worker in front of an embedding provider: one refused input goes to the dead-letter
queue alone; an outage gives the jobs back uncounted, stops receiving, and resumes by itself
(the rig's SQLite queue and in-memory index; a scripted provider wire)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from constellation import records
from constellation.embedders.provider.session import PROBE_TEXT
from constellation.embedders.provider.wire import Failed, InputRefused, Transient
from tests.unit.provider_rig import provider
from tests.unit.worker_rig import Rig, job


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_refused_input_alone_goes_to_the_dead_letter_queue_at_once(rig: Rig) -> None:
    def script(texts: Sequence[str]) -> Failed | None:
        if any("forbidden" in t for t in texts):
            return InputRefused("400 Bad Request: input contains forbidden content")
        return None

    rig.embedder, _wire, _ = provider(script, dimensions=8)
    rig.send(*(job("u", f"n{i}", f"note {i}") for i in range(7)), job("u", "bad", "forbidden"))
    rig.worker(max_batch_size=8).run(drain=True)
    assert sorted(r.metadata["noteId"] for r in rig.index.records.values()) == [
        f"n{i}" for i in range(7)
    ]
    (letter,) = rig.dead_letters()
    assert letter.attributes["reason"] == "input_refused"
    assert letter.attributes["detail"] == "400 Bad Request: input contains forbidden content"
    assert letter.attributes["receiveCount"] == "1"  # not retried: no retry mends it
    assert rig.stats.dead_lettered == {"input_refused": 1}
    assert rig.queue.depth().total == 0


def test_an_outage_pauses_receiving_and_fills_no_dead_letter_queue(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_retries=1)
    down = threading.Event()
    down.set()
    rig.embedder, wire, _ = provider(
        lambda texts: Transient("503 Service Unavailable") if down.is_set() else None,
        real_time=True,
        dimensions=8,
        backoff=0.001,
        max_backoff=0.001,
        failures_to_open=3,
        probe_interval=0.05,
    )
    rig.send(*(job("u", f"n{i}", f"text {i}") for i in range(30)))
    worker = rig.worker(upstreams=[rig.embedder], max_batch_size=5, max_concurrency=2)
    done = threading.Thread(target=lambda: worker.run(drain=True))
    done.start()
    wait_for(lambda: rig.embedder.outage() is not None and rig.stats.deferred >= 5)
    wait_for(lambda: rig.queue.depth().in_flight == 0)  # every job given back
    asked = len(wire.requests)
    wait_for(lambda: len(wire.requests) >= asked + 3)  # it keeps probing...
    assert all(r == [PROBE_TEXT] for r in wire.requests[asked:])  # ...and only probing
    assert rig.dlq.depth().total == 0
    # given back uncounted: after several outage rounds no job's receive count grew
    waiting = rig.queue.receive(max_messages=30, visibility_timeout=0)
    assert len(waiting) == 30 and {m.receive_count for m in waiting} == {1}

    down.clear()  # the provider is back: the worker resumes by itself
    done.join(30)
    assert not done.is_alive()
    assert sorted(rig.index.records) == sorted(
        records.record_id("u", f"n{i}", 1) for i in range(30)
    )
    assert rig.dlq.depth().total == 0 and rig.queue.depth().total == 0
    assert rig.stats.processed == 30 and not rig.stats.failed
