"""The migration state's typed notes: older stored layouts read, checks merged by name."""

from __future__ import annotations

import json
from pathlib import Path

from constellation.ledger.notes import from_stored, merged, step_started_at
from constellation.ledger.state import MigrationState, StateStore


def test_checks_stored_under_their_own_keys_are_read_into_checks() -> None:
    stored = {
        "phase": 2,
        "notes": {
            "step_started_at": 12.5,
            "check: recall": {"outcome": "pass", "value": 0.97, "at": 3.0},
            "check: quality": {"outcome": "fail", "value": 0.4, "at": 4.0},
        },
    }
    state = MigrationState.from_json(json.dumps(stored))
    assert state.notes.get("checks") == {
        "recall": {"outcome": "pass", "value": 0.97, "at": 3.0},
        "quality": {"outcome": "fail", "value": 0.4, "at": 4.0},
    }
    assert step_started_at(state.notes) == 12.5
    assert not any(key.startswith("check: ") for key in state.notes)
    # and written back in the new layout, which reads the same again
    assert MigrationState.from_json(state.to_json()).notes == state.notes


def test_a_new_check_keeps_the_others_and_other_entries() -> None:
    before = from_stored({"checks": {"recall": {"outcome": "pass"}}, "step_started_at": 1.0})
    after = merged(before, {"checks": {"quality": {"outcome": "fail"}}})
    assert after.get("checks") == {"recall": {"outcome": "pass"}, "quality": {"outcome": "fail"}}
    assert after.get("step_started_at") == 1.0
    again = merged(after, {"checks": {"recall": {"outcome": "fail"}}, "step_started_at": 2.0})
    assert again.get("checks", {})["recall"] == {"outcome": "fail"}
    assert step_started_at(again) == 2.0
    assert step_started_at(from_stored(None)) == 0.0


def test_two_transitions_recording_different_checks_keep_both(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}", "notes", "test")
    store.transition("a", "first", lambda _s: {"phase": 1}, creating=True)
    store.change("check recall", "measured", notes={"checks": {"recall": {"outcome": "pass"}}})
    store.change("check quality", "measured", notes={"checks": {"quality": {"outcome": "fail"}}})
    assert set(store.read().notes.get("checks", {})) == {"recall", "quality"}
