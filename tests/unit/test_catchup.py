"""When did the old system stop getting writes? What a rollback from phase 4 catches up from."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from constellation.ledger.state import StateStore
from phases.migrate.catchup import OLD_WRITES_STOPPED, needs_catch_up, old_writes_stopped


def test_the_start_of_phase4_from_the_state_or_else_from_the_journal(tmp_path: Path) -> None:
    clock = iter([100.0, 200.0, 300.0, 400.0])
    store = StateStore(f"sqlite:///{tmp_path}/state.db", "notes", "test", clock=lambda: next(clock))
    m = SimpleNamespace(state=store)
    assert old_writes_stopped(m, store.read()) is None  # type: ignore[arg-type]
    store.change("migrate phase 1", "dual", write_mode="dual")
    store.change("migrate phase 4", "forced by hand, no note", write_mode="new")
    state = store.read()
    assert needs_catch_up(state)
    assert old_writes_stopped(m, state) == 200.0  # type: ignore[arg-type]
    store.change("migrate phase 4", "with the note", notes={OLD_WRITES_STOPPED: 150.5})
    assert old_writes_stopped(m, store.read()) == 150.5  # type: ignore[arg-type]
    store.change("rollback quick", "dual again", write_mode="dual")
    assert not needs_catch_up(store.read())
    store.close()
