"""Several processes change the migration state of one real SQLite file at once, many times.

Each process owns one field of the state and one note key, and every one of them also adds one
to a shared note counter, a read-modify-write decided on the state inside the transition. If
any change were lost (a write based on a stale read), a field, a note or the shared count
would come out short, or the journal's chain of states would break.
"""

from __future__ import annotations

import multiprocessing
from itertools import pairwise
from pathlib import Path
from typing import Any

from constellation.ledger.state import MigrationState, StateStore

PROCESSES = 4
CHANGES = 30


def _value(worker: int, i: int) -> tuple[str, Any]:
    """The field worker ``worker`` sets on its ``i``-th change, and the value."""
    if worker == 0:
        return "read_traffic", round((i + 1) / 100, 2)
    if worker == 1:
        return "consumer_enabled", i % 2 == 1
    if worker == 2:
        return "write_versions", (1, 2) if i % 2 == 0 else (1,)
    return "traffic_step", i


def _change_many(url: str, worker: int, start: Any) -> None:
    store = StateStore(url, "notes", "development")
    start.wait()
    for i in range(CHANGES):
        field, value = _value(worker, i)

        def decide(state: MigrationState, field: str = field, value: Any = value) -> dict[str, Any]:
            notes = state.notes
            return {
                field: value,
                "notes": {
                    f"worker {worker}": notes.get(f"worker {worker}", 0) + 1,
                    "total": notes.get("total", 0) + 1,
                },
            }

        store.transition(f"worker {worker}", f"change {i}", decide)
    store.close()


def test_processes_changing_different_fields_at_once_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    workers = [
        spawn.Process(target=_change_many, args=(url, worker, start)) for worker in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    start.set()
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0

    store = StateStore(url, "notes", "development")
    state = store.read()
    # Each field holds the last value its process wrote, and every increment arrived.
    for worker in range(PROCESSES):
        field, value = _value(worker, CHANGES - 1)
        assert getattr(state, field) == value, field
        assert state.notes[f"worker {worker}"] == CHANGES
    assert state.notes["total"] == PROCESSES * CHANGES

    journal = store.journal(limit=PROCESSES * CHANGES + 10)
    assert len(journal) == PROCESSES * CHANGES
    per_worker = {w: [e for e in journal if e.command == f"worker {w}"] for w in range(PROCESSES)}
    assert {w: len(entries) for w, entries in per_worker.items()} == dict.fromkeys(
        range(PROCESSES), CHANGES
    )
    # Each entry changed its own field only (besides notes): nobody's write undid another's.
    for worker, entries in per_worker.items():
        field, _ = _value(worker, 0)
        assert all(set(e.changes) <= {field, "notes"} for e in entries), worker
        assert [e.reason for e in entries] == [f"change {i}" for i in range(CHANGES)]
    # Serialized: every transition started from the state the one before it wrote.
    for previous, entry in pairwise(journal):
        assert entry.before == previous.after
    store.close()
