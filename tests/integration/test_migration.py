"""The four phases on the embedded default (real queue, indexes, state, source; fake model)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.errors import StateError
from constellation.migration.source import Note
from phases.migrate import backfill, status
from phases.migrate.phase1 import phase1
from phases.migrate.phase2 import Tick, phase2
from phases.migrate.phase3 import phase3
from phases.migrate.phase4 import phase4
from phases.sample_notes import search_phrases
from tests.support.migration import RigMigration, search_until, started


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path) as rigged:
        yield rigged


def test_phase1_backfills_drains_and_passes_its_gate(m: RigMigration) -> None:
    report = phase1(m, wait=True)
    assert report.ok, report.gate
    assert report.consistency is not None
    assert report.consistency.mean == 1.0  # identical systems: overlap 1.0
    assert report.consistency.distribution["1.0"] == report.consistency.checked == 30
    assert m.services.index().count() == 120
    state = m.state.read()
    assert (state.phase, state.status, state.write_mode) == (1, "passed", "dual")
    again = phase1(m, wait=True)  # re-runnable: nothing left to send
    assert [s.outcome for s in again.steps][:2] == ["unchanged", "unchanged"]


def test_phases_refuse_to_start_out_of_order(m: RigMigration) -> None:
    with pytest.raises(StateError, match="phase 2 cannot start"):
        phase2(m)
    with pytest.raises(StateError, match="phase 4 cannot start"):
        phase4(m)
    assert [e.command for e in m.state.journal()] == ["provision"]  # its record only


def test_dry_run_changes_nothing(m: RigMigration) -> None:
    report = phase1(m, wait=True, dry_run=True)
    assert [s.outcome for s in report.steps] == ["would update", "would update", "would update"]
    assert "enqueue 120 notes" in report.steps[1].detail
    assert m.state.read().phase == 0
    assert m.services.queue.depth().total == 0


def test_phase2_dry_run_describes_the_steps_the_real_run_applies(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    journal = m.state.journal()
    dry = phase2(m, mode="auto", dry_run=True)
    assert [(s.resource, s.outcome) for s in dry.steps] == [
        ("migration state", "would update"),
        ("read traffic", "would update"),
        ("dwell at 20%", "would update"),
        ("read traffic", "would update"),
        ("dwell at 50%", "would update"),
        ("read traffic", "would update"),
        ("dwell at 80%", "would update"),
        ("phase 2", "would update"),
    ]
    assert dry.steps[1].detail == "gate, then read traffic to 20%"
    assert m.state.journal() == journal  # nothing was changed
    search_until(m, 10)
    real = phase2(m, mode="step")
    assert [(s.resource, s.outcome, s.detail) for s in real.steps] == [
        ("migration state", "updated", "phase 2, status running"),
        ("read traffic", "updated", "20% of users on the new system"),
    ]


def test_backfill_interrupted_and_resumed_enqueues_every_note_once(m: RigMigration) -> None:
    sent = [0]

    def crash_after_two_batches(n: int) -> None:
        sent[0] += n
        if sent[0] >= 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill.backfill(
            m.source,
            m.services.queue,
            m.state,
            [1],
            on_progress=crash_after_two_batches,
            batch_size=25,
        )
    assert m.services.queue.depth().total == 50
    report = backfill.backfill(m.source, m.services.queue, m.state, [1], batch_size=25)
    assert report.resumed_after is not None and report.sent == 70
    bodies = [msg.body for msg in m.services.queue.receive(max_messages=500)]
    note_ids = sorted(b.split('"noteId": "')[1].split('"')[0] for b in bodies)
    assert note_ids == sorted(n.id for n in m.sample)


def test_degraded_new_index_fails_the_phase2_gate_and_traffic_returns_to_zero(
    m: RigMigration,
) -> None:
    assert phase1(m, wait=True).ok
    search_until(m, 10)
    step = phase2(m, mode="step")
    assert step.ok and m.state.read().read_traffic == 0.2
    # half of the new index disappears
    index = m.services.index()
    ids = [r.id for r in index.scan()]
    index.delete(ids[::2])
    search_until(m, 10)
    report = phase2(m, mode="step")
    assert not report.ok
    assert report.gate is not None and not report.gate.passed
    state = m.state.read()
    assert (state.read_traffic, state.traffic_step) == (0.0, -1)
    last = m.state.journal()[-1]
    assert "gate failed before 50%" in last.reason and "mean overlap" in last.reason
    assert last.changes["read_traffic"] == (0.2, 0.0)


def test_auto_catches_a_candidate_degrading_during_the_dwell(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    search_until(m, 10)
    stop = threading.Event()

    def app() -> None:
        router = m.router()
        phrases = search_phrases(m.sample, seed=3)
        while not stop.is_set():
            user, text = next(phrases)
            router.search(text, user)
        router.close()

    def degrade_after_the_first_step(tick: Tick) -> None:
        index = m.services.index()
        if tick.traffic == 0.2 and index.count() == 120:
            index.delete([r.id for r in index.scan()][::2])

    thread = threading.Thread(target=app)
    thread.start()
    try:
        report = phase2(
            m, mode="auto", dwell=30, check_every=0.2, on_tick=degrade_after_the_first_step
        )
    finally:
        stop.set()
        thread.join()
    assert not report.ok
    assert m.state.read().read_traffic == 0.0
    assert "during the dwell at 20%" in m.state.journal()[-1].reason


def test_the_whole_walk_and_status_tells_the_truth_at_every_step(m: RigMigration) -> None:
    def now() -> tuple[int, str, str, float]:
        s = status.status(m).state
        return s.phase, s.status, s.write_mode, s.read_traffic

    assert now() == (0, "not_started", "old", 0.0)
    assert status.status(m).next_step == "constellation migrate phase 1"
    assert phase1(m, wait=True).ok
    assert now() == (1, "passed", "dual", 0.0)
    gate = status.status(m).gate
    assert gate is not None and gate.passed
    for expected in (0.2, 0.5, 0.8):
        search_until(m, 10)
        assert phase2(m, mode="step").ok
        assert now() == (2, "running", "dual", expected)
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    assert now() == (2, "passed", "dual", 0.8)
    # app writes during the migration reach both systems
    router = m.router()
    edited = Note("note-000001", m.sample[1].user_id, "a brand new text about gardening", 1, 10**13)
    router.write(edited)
    router.close()
    assert m.services.queue.depth().total == 1
    report = phase3(m)
    assert report.ok, report.gate and report.gate.failing()
    assert now() == (3, "passed", "dual", 1.0)
    report = phase4(m)
    assert report.ok
    assert now() == (4, "complete", "new", 1.0)
    archived = m.state.read().notes.get("archive")
    assert archived is not None and archived["records"] == 120
    assert Path(archived["path"]).exists()
    commands = [e.command for e in m.state.journal(50)]
    assert commands[:2] == ["provision", "migrate phase 1"] and commands[-1] == "migrate phase 4"
