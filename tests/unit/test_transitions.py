"""The migration's state machine: phases start in order, or forced with a journaled reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.errors import StateError
from constellation.ledger.state import MigrationState, StateStore
from phases.migrate.transitions import may_start, require_start


@pytest.mark.parametrize(
    ("phase", "status", "allowed"),
    [
        (0, "not_started", {1}),
        (1, "running", {1}),
        (1, "passed", {1, 2}),
        (2, "running", {2}),
        (2, "passed", {2, 3}),
        (3, "running", {3}),
        (3, "passed", {3, 4}),
        (4, "running", {4}),
        (4, "complete", set()),
        (2, "rolled_back", {1}),
        (4, "rolled_back", {1}),
    ],
)
def test_which_phase_may_start(phase: int, status: str, allowed: set[int]) -> None:
    state = MigrationState(phase=phase, status=status)  # type: ignore[arg-type]
    assert {p for p in range(1, 5) if may_start(state, p)} == allowed


def test_illegal_start_is_refused_with_the_next_step() -> None:
    state = MigrationState(phase=1, status="running")
    with pytest.raises(StateError) as caught:
        require_start(state, 2)
    assert "phase 2 cannot start: phase 1 (parallel write): running" in str(caught.value)
    assert "constellation migrate phase 1" in str(caught.value)
    with pytest.raises(StateError, match="--force"):
        require_start(MigrationState(), 3)


def test_force_needs_a_reason_and_says_so_in_the_journal(tmp_path: Path) -> None:
    state = MigrationState(phase=1, status="running")
    with pytest.raises(StateError, match="--reason"):
        require_start(state, 2, force=True)
    why = require_start(state, 2, force=True, reason="gate flaky, checked by hand")
    assert why == "forced from phase 1 (parallel write): running: gate flaky, checked by hand"


def test_every_change_is_journaled_with_before_and_after(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 's.db'}", "plan", "dev")
    assert store.read() == MigrationState()
    store.change("migrate phase 1", "start", phase=1, status="running", write_mode="dual")
    store.change("traffic set", "manual", read_traffic=0.2)
    first, second = store.journal()
    assert (first.command, first.reason) == ("migrate phase 1", "start")
    assert first.changes == {
        "phase": (0, 1),
        "status": ("not_started", "running"),
        "write_mode": ("old", "dual"),
    }
    assert second.changes == {"read_traffic": (0.0, 0.2)}
    # another environment of the same plan has its own state
    assert StateStore(store.url, "plan", "staging").read().phase == 0
    with pytest.raises(StateError):
        store.change("x", "y", no_such_field=1)
