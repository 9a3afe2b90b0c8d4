"""Three outcomes in the phases, the capacity check, recall against exact search, recorded
checks (real queue, indexes, state and source; the fake model, so the phases take seconds)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from constellation.index.port import VectorRecord
from constellation.ledger.notes import step_started_at
from phases.checks.capacity import CHROMA_DISK, CHROMA_MEMORY, Machine, check_capacity
from phases.checks.recall import check_recall
from phases.migrate import status
from phases.migrate.phase1 import phase1
from phases.migrate.phase2 import Tick, phase2
from phases.sample_notes import search_phrases
from tests.support.migration import RigMigration, search_until, started

PLENTY = Machine(memory=lambda: 2**40, disk=lambda _path: 2**40)


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path) as rigged:
        yield rigged


def replace_with_noise(m: RigMigration, share: float, seed: int = 3) -> int:
    """Replace ``share`` of the new index's vectors by random ones (ids and metadata kept)."""
    index = m.services.index()
    stored = list(index.scan(include_vectors=True))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(stored), size=int(len(stored) * share), replace=False)
    noisy = []
    for i in chosen:
        vector = rng.normal(size=index.dimension).astype(np.float32)
        noisy.append(
            VectorRecord(stored[i].id, vector / np.linalg.norm(vector), stored[i].metadata)
        )
    index.upsert(noisy)
    return len(noisy)


def search_exactly(m: RigMigration, searches: int) -> None:
    """``searches`` app searches, and wait until each one's comparison is logged."""
    router = m.router()
    phrases = search_phrases(m.sample, seed=13)
    since = step_started_at(m.state.read().notes)
    for _ in range(searches):
        user, text = next(phrases)
        router.search(text, user)
    router.close()  # waits for the shadow searches, which log the comparisons
    assert m.comparisons.summary(since).comparisons == searches


def test_too_few_searches_leave_the_step_waiting_then_more_let_it_pass(m: RigMigration) -> None:
    assert phase1(m, wait=True, capacity_rate=100.0, machine=PLENTY).ok
    search_exactly(m, 3)
    waiting = phase2(m, mode="step")
    assert waiting.outcome == "inconclusive" and not waiting.ok
    assert waiting.gate is not None and waiting.gate.outcome == "inconclusive"
    assert m.state.read().read_traffic == 0.0  # left where it was, not sent back
    assert "could not decide" in waiting.message
    assert waiting.message.endswith("`constellation migrate phase 2 --step`")
    recorded = {c.name: c for c in status.status(m).checks}
    assert recorded["comparisons since the last step"].outcome == "inconclusive"
    assert recorded["comparisons since the last step"].value == "3"

    search_until(m, 10)
    taken = phase2(m, mode="step")
    assert taken.ok and taken.outcome == "pass"
    assert m.state.read().read_traffic == 0.2
    recorded = {c.name: c for c in status.status(m).checks}
    assert recorded["comparisons since the last step"].outcome == "pass"
    assert recorded["comparisons since the last step"].command == "migrate phase 2"


def test_auto_without_searches_waits_then_stops_leaving_the_traffic(m: RigMigration) -> None:
    assert phase1(m, wait=True, capacity_rate=100.0, machine=PLENTY).ok
    ticks: list[Tick] = []
    report = phase2(m, mode="auto", dwell=0.4, check_every=0.05, on_tick=ticks.append)
    assert report.outcome == "inconclusive"
    assert m.state.read().read_traffic == 0.0
    waited = [t for t in ticks if t.waiting]
    assert waited and all(t.target == 0.2 and t.comparisons == "0" for t in waited)
    # it watched for the plan's limit (three dwells without traffic.max_wait), not less
    assert max(t.elapsed for t in waited) >= 1.0
    assert "migrate phase 2 --auto" in report.message


def test_auto_waits_for_the_app_and_walks_on_when_it_searches(m: RigMigration) -> None:
    assert phase1(m, wait=True, capacity_rate=100.0, machine=PLENTY).ok
    stop, searching = threading.Event(), threading.Event()

    def app() -> None:
        searching.wait(30)
        router = m.router()
        phrases = search_phrases(m.sample, seed=5)
        while not stop.is_set():
            user, text = next(phrases)
            router.search(text, user)
        router.close()

    def on_tick(tick: Tick) -> None:
        if tick.waiting:
            searching.set()  # the app starts only once the gate is seen waiting

    thread = threading.Thread(target=app)
    thread.start()
    try:
        report = phase2(m, mode="auto", dwell=1.0, check_every=0.05, on_tick=on_tick)
    finally:
        searching.set()
        stop.set()
        thread.join()
    assert report.ok, report.message
    assert (m.state.read().phase, m.state.read().status) == (2, "passed")


def test_capacity_arithmetic_against_an_injected_rate(m: RigMigration) -> None:
    report = check_capacity(m, rate=40.0, machine=PLENTY)
    assert (report.notes, report.stored, report.to_embed) == (120, 0, 120)
    assert report.backfill_seconds == pytest.approx(3.0)
    assert report.records_after == 120
    assert report.memory_needed == CHROMA_MEMORY.bytes(120, 384)
    assert report.disk_needed == CHROMA_DISK.bytes(120, 384)
    assert report.outcome == "pass" and not report.warnings

    needed = report.memory_needed
    tight = check_capacity(m, rate=40.0, machine=Machine(lambda: int(needed / 0.9), PLENTY.disk))
    assert tight.outcome == "pass"
    assert tight.warnings and tight.warnings[0].startswith("index memory: the index would take 90%")
    short = check_capacity(m, rate=40.0, machine=Machine(lambda: needed - 1, PLENTY.disk))
    assert short.outcome == "fail"
    assert short.gate().failing().startswith("index memory:")
    unknown = check_capacity(m, rate=40.0, machine=Machine(lambda: None, PLENTY.disk))
    assert unknown.outcome == "inconclusive"


def test_capacity_measures_the_rate_on_a_sample_with_the_plan_s_model(m: RigMigration) -> None:
    embedder = m.services.embedder()
    before = len(embedder.texts)  # type: ignore[attr-defined]
    report = check_capacity(m, machine=PLENTY)
    assert report.sample == 64 and report.rate is not None and report.rate > 0
    assert len(embedder.texts) - before == 65  # type: ignore[attr-defined]  # + the warm-up
    assert report.backfill_seconds == pytest.approx(120 / report.rate)


def test_phase1_refuses_when_the_index_will_not_fit_unless_forced(m: RigMigration) -> None:
    small = Machine(memory=lambda: 10_000, disk=PLENTY.disk)
    refused = phase1(m, wait=True, capacity_rate=40.0, machine=small)
    assert refused.outcome == "fail"
    assert "the index will not fit: index memory" in refused.message
    assert "--force" in refused.message
    state = m.state.read()
    assert (state.phase, state.write_mode) == (0, "old")
    assert m.services.queue.depth().total == 0 and m.services.index().count() == 0
    assert {c.name: c.outcome for c in status.status(m).checks}["index memory"] == "fail"

    forced = phase1(m, wait=True, force=True, capacity_rate=40.0, machine=small)
    assert forced.ok
    assert "capacity overridden: index memory" in m.state.journal()[-2].reason


def test_noise_in_a_fifth_of_the_vectors_fails_the_recall_check(tmp_path: Path) -> None:
    with started(tmp_path, notes=300, users=3) as m:
        assert phase1(m, wait=True, capacity_rate=100.0, machine=PLENTY).ok
        healthy = check_recall(m, users=3, queries=20)
        assert healthy.outcome == "pass" and healthy.recall is not None
        assert healthy.recall >= 0.95 and healthy.queries == 60
        assert healthy.embedded == 300  # every sampled user's notes, embedded again
        replace_with_noise(m, 0.2)
        damaged = check_recall(m, users=3, queries=20)
        assert damaged.outcome == "fail"
        assert damaged.recall is not None and damaged.recall < 0.9
        assert damaged.worst and damaged.worst[0].missing
        assert damaged.as_check().outcome == "fail"
