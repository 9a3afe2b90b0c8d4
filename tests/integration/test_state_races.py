"""Decisions are made on the state being written: another command that commits between a
command's first look and its write is seen, never overwritten (real state store, SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from constellation.errors import StateError
from constellation.ledger.state import StateStore, Transition
from constellation.migration.source import create_notes_table
from constellation.wiring.migration import Migration
from phases.checks.gates import Gate, GateCheck
from phases.migrate import model as models
from phases.migrate import rollback, traffic
from phases.migrate.phase import PhaseReport, conclude
from phases.migrate.phase2_steps import GatedChange
from phases.operate.provision import provision
from phases.steps import Check
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
    monkeypatch.setattr("phases.migrate.phase2_steps.current_gate", lambda *_args: passing)
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


def _at_first_step(m: Migration, monkeypatch: pytest.MonkeyPatch) -> GatedChange:
    """Phase 2 just started (traffic 0) with a passing gate: the step to 20%."""
    m.state.change("test", "phase 2 started", phase=2, status="running", write_mode="dual")
    passing = Gate("traffic step", [GateCheck("comparisons", True, "10", ">= 10")])
    monkeypatch.setattr("phases.migrate.phase2_steps.current_gate", lambda *_args: passing)
    return GatedChange(
        m, "read traffic", "read traffic to 20%", "before 20%", {"read_traffic": 0.2}, "20%"
    )


def test_a_first_traffic_step_after_a_full_rollback_is_refused(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full rollback leaves read traffic at 0, where the first step started: the step must
    # still see that the state moved, or it serves 20% from an index that gets no writes.
    step = _at_first_step(m, monkeypatch)
    before_the_write(m, monkeypatch, "migrate phase 2", lambda: rollback.rollback_full(m))
    with pytest.raises(StateError, match="changed underneath"):
        step.apply()
    state = m.state.read()
    assert (state.write_mode, state.read_traffic, state.status) == ("old", 0.0, "rolled_back")


def test_a_traffic_step_whose_gate_is_read_after_a_full_rollback_is_refused(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rollback lands between the phase's opening and the gate's first look at the state:
    # nothing moved while the gate was read, but the state it read is no running phase 2.
    step = _at_first_step(m, monkeypatch)
    rollback.rollback_full(m)
    with pytest.raises(StateError, match=r"changed underneath.*no longer running"):
        step.apply()
    state = m.state.read()
    assert (state.write_mode, state.read_traffic, state.status) == ("old", 0.0, "rolled_back")


def test_a_first_traffic_step_after_a_quick_rollback_is_refused(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = _at_first_step(m, monkeypatch)
    before_the_write(m, monkeypatch, "migrate phase 2", lambda: rollback.rollback_quick(m))
    with pytest.raises(StateError, match="changed underneath"):
        step.apply()
    state = m.state.read()
    assert (state.read_traffic, state.consumer_enabled) == (0.0, False)


def test_traffic_set_after_a_full_rollback_is_refused(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    m.state.change("test", "at 20%", phase=2, status="running", write_mode="dual", read_traffic=0.2)
    before_the_write(m, monkeypatch, "traffic set", lambda: rollback.rollback_full(m))
    with pytest.raises(StateError, match="write mode old"):
        traffic.set_traffic(m, 0.5, yes=True)
    state = m.state.read()
    assert (state.write_mode, state.read_traffic) == ("old", 0.0)


def test_a_model_upgrade_after_a_full_rollback_is_refused(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_notes_table(m.plan.source_url)
    provision(m.plan, m.services)
    m.state.change("test", "phase 1", phase=1, status="passed", write_mode="dual")
    before_the_write(m, monkeypatch, "model upgrade", lambda: rollback.rollback_full(m))
    monkeypatch.setattr(models, "CheckModel", _NoModelCheck)
    monkeypatch.setattr(models, "index_steps", lambda *_args: [])
    with pytest.raises(StateError, match="no writes"):
        models.upgrade(m, 2)
    state = m.state.read()
    assert (state.write_mode, state.write_versions) == ("old", (1,))
    assert m.services.queue.depth().total == 0  # nothing was backfilled for version 2


class _NoModelCheck:
    """Stands in for the model check (this rig has no version 2 model)."""

    resource = "model 2"

    def __init__(self, *_args: object) -> None:
        pass

    def describe(self) -> str:
        return "check model 2"

    def check(self) -> Check:
        return Check("check", "skipped")

    def apply(self) -> str:
        return ""

    def undo(self) -> None:
        pass
