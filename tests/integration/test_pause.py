"""``migrate pause`` / ``resume``: phase 2 held at its step (real queue, index, state and source;
the fake model). A pause refuses promotions and stops a running ``--auto`` at its next look;
rollbacks still work; every change is journaled with its reason and who made it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.errors import StateError
from constellation.ledger.journal import acting_as
from phases.migrate import status
from phases.migrate.pause import pause, resume
from phases.migrate.phase1 import phase1
from phases.migrate.phase2 import phase2
from phases.migrate.rollback import rollback_quick
from tests.integration.test_gate_outcomes import PLENTY
from tests.support.migration import RigMigration, search_until, started


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path) as rigged:
        assert phase1(rigged, wait=True, capacity_rate=100.0, machine=PLENTY).ok
        yield rigged


def test_pause_refused_outside_a_running_phase_2(m: RigMigration) -> None:
    with pytest.raises(StateError, match="only a running phase 2 can be paused"):
        pause(m, reason="too early")
    assert not m.state.read().paused


def test_a_pause_holds_promotions_until_resumed(m: RigMigration) -> None:
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    assert m.state.read().read_traffic == 0.2
    with acting_as("console (token ops)"):
        held = pause(m, reason="p95 looks odd")
    assert held.changed and held.paused and "paused at 20%" in held.message
    entry = m.state.journal(1)[0]
    assert (entry.command, entry.reason, entry.who) == (
        "migrate pause",
        "p95 looks odd",
        "console (token ops)",
    )
    assert "paused" in status.status(m).summary
    assert "migrate resume" in status.status(m).next_step

    search_until(m, 10)
    with pytest.raises(StateError, match="phase 2 is paused at 20% read traffic") as refused:
        phase2(m, mode="step")
    assert "constellation migrate resume" in str(refused.value)
    with pytest.raises(StateError, match="paused"):
        phase2(m, mode="step", dry_run=True)
    assert m.state.read().read_traffic == 0.2
    again = pause(m, reason="twice")
    assert not again.changed and "already paused" in again.message
    assert m.state.journal(1)[0].reason == "p95 looks odd"  # no entry for nothing

    assert resume(m, reason="checked").changed
    assert phase2(m, mode="step").ok
    assert m.state.read().read_traffic == 0.5


def test_a_pause_stops_a_running_auto_at_its_dwell(m: RigMigration) -> None:
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    outcome: dict[str, BaseException | None] = {}
    dwelling = threading.Event()

    def on_tick(_tick: object) -> None:
        dwelling.set()

    def run() -> None:
        try:
            phase2(m, mode="auto", dwell=60.0, check_every=0.05, on_tick=on_tick)
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    search_until(m, 10)
    auto = threading.Thread(target=run)
    auto.start()
    assert dwelling.wait(60), "--auto never reached its dwell"
    pause(m, reason="hold it")
    auto.join(30)
    assert not auto.is_alive(), "--auto kept dwelling after the pause"
    error = outcome["error"]
    assert isinstance(error, StateError) and "paused" in str(error)
    state = m.state.read()
    assert state.read_traffic == 0.5 and state.paused


def test_a_rollback_still_works_while_paused(m: RigMigration) -> None:
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    pause(m, reason="hold")
    rolled = rollback_quick(m, reason="abort")
    assert rolled.state is not None and rolled.state.read_traffic == 0.0
    assert m.state.journal(1)[0].command == "rollback quick"
