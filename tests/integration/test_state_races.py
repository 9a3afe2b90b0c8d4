"""Decisions are made on the state being written: another command that commits between a
command's first look and its write is seen, never overwritten (real state store, SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from constellation.errors import StateError
from constellation.migration.runtime import Migration
from constellation.migration.state import StateStore, Transition
from phases import rollback
from phases.gates import Gate, GateCheck
from phases.phase import PhaseReport, conclude
from phases.phase2 import GatedChange
from tests.support.migration import rig


@pytest.fixture
def m(tmp_path: Path) -> Iterator[Migration]:
    plan, services = rig(tmp_path)
    with services, Migration(plan, services) as migration:
        yield migration


def before_the_write(
    m: Migration, monkeypatch: pytest.MonkeyPatch, command: str, other: Callable[[], Any]
) -> None:
    """Run ``other`` just before the first transition of ``command`` begins: after that
    command's own look at the state, before its write."""
    transition = StateStore.transition
    pending = [other]

    def racing(store: StateStore, name: str, *args: Any, **kwargs: Any) -> Transition:
        if name == command and pending:
            pending.pop()()
        return transition(store, name, *args, **kwargs)

    monkeypatch.setattr(StateStore, "transition", racing)


def test_a_quick_rollback_after_a_full_one_keeps_it_full(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    m.state.change("test", "phase 3 running", phase=3, status="running", write_mode="dual")
    before_the_write(m, monkeypatch, "rollback quick", lambda: rollback.rollback_full(m))
    rollback.rollback_quick(m)
    state = m.state.read()
    # Not "phase 2, running, write_mode old": the quick one saw the full one and left it.
    assert (state.phase, state.status, state.write_mode) == (3, "rolled_back", "old")
    assert [e.command for e in m.state.journal()][-2:] == ["test", "rollback full"]


def test_a_phase_whose_gate_passed_after_a_rollback_records_nothing(m: Migration) -> None:
    m.state.change("test", "phase 3 running", phase=3, status="running", write_mode="dual")
    report = PhaseReport(
        3, False, gate=Gate("phase 3 verification", [GateCheck("x", True, "", "")])
    )
    rollback.rollback_full(m)  # while the checklist ran
    with pytest.raises(StateError, match="changed by another command while its gate"):
        conclude(m, report, {"consistency": {}}, done="passed", passed="", failed="")
    assert m.state.read().status == "rolled_back"
    assert "consistency" not in m.state.read().notes


def test_a_traffic_step_refuses_when_traffic_moved_while_its_gate_was_read(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    m.state.change("test", "at 20%", phase=2, status="running", write_mode="dual", read_traffic=0.2)
    passing = Gate("traffic step", [GateCheck("comparisons", True, "10", ">= 10")])
    monkeypatch.setattr("phases.phase2.current_gate", lambda *_args: passing)
    step = GatedChange(
        m, "read traffic", "read traffic to 50%", "before 50%", {"read_traffic": 0.5}, "50%"
    )
    before_the_write(m, monkeypatch, "migrate phase 2", lambda: rollback.rollback_quick(m))
    with pytest.raises(StateError, match="changed by another command while its gate"):
        step.apply()
    assert m.state.read().read_traffic == 0.0


def test_notes_are_merged_inside_the_transition(m: Migration) -> None:
    m.state.change("a", "first", notes={"archive": {"records": 3}})
    m.state.change("b", "second", notes={"consistency": {"mean": 0.9}})
    assert m.state.read().notes == {"archive": {"records": 3}, "consistency": {"mean": 0.9}}


def test_a_refused_transition_writes_nothing(m: Migration) -> None:
    def refuse(_state: object) -> None:
        raise StateError("no")

    with pytest.raises(StateError):
        m.state.transition("x", "y", refuse)
    unchanged = m.state.transition("x", "y", lambda _state: None)
    assert not unchanged.changed
    assert m.state.journal() == []
