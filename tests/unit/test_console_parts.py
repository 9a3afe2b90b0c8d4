"""The console's own logic: old beside new sliced in time, and the journal's ``who`` (added to
journals written before it, set per request for the console)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from constellation.ledger.comparisons import Comparison, side_by_side
from constellation.ledger.journal import acting_as, default_actor
from constellation.ledger.state import StateStore


def row(at: float, overlap: float | None, old_ms: float, new_ms: float, **kw: str) -> Comparison:
    return Comparison(at, "old", 0.2, overlap, 10, 10, old_ms, new_ms, **kw)


def test_side_by_side_slices_time_and_counts_each_side() -> None:
    rows = [
        row(100.0, 1.0, 10.0, 20.0),
        row(105.0, 0.5, 30.0, 40.0),
        row(150.0, 0.05, 50.0, 60.0, new_error="timeout"),
        row(199.0, None, 70.0, 80.0, old_error="down"),
    ]
    view = side_by_side(rows, 100.0, 200.0, buckets=4)
    assert [b.start for b in view.buckets] == [100.0, 125.0, 150.0, 175.0]
    assert [b.comparisons for b in view.buckets] == [2, 0, 1, 1]
    first, empty, third, last = view.buckets
    assert first.mean_overlap == 0.75 and (first.old_p50_ms, first.new_p95_ms) == (10.0, 40.0)
    assert empty.mean_overlap is None and empty.old_p95_ms is None
    assert (third.new_errors, third.new_p50_ms) == (1, None)  # a failed side has no latency
    assert (last.old_errors, last.old_p50_ms, last.mean_overlap) == (1, None, None)
    # overlaps 1.0 (top bin), 0.5 and 0.05; the one without an overlap is not counted
    assert view.overlap_histogram == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert view.total.comparisons == 4 and view.total.new_error_rate == 0.25
    assert (view.old_p50_ms, view.new_p50_ms) == (30.0, 40.0)


def test_no_comparisons_is_empty_not_an_error() -> None:
    view = side_by_side([], 0.0, 60.0, buckets=3)
    assert [b.comparisons for b in view.buckets] == [0, 0, 0]
    assert view.total.mean_overlap is None and sum(view.overlap_histogram) == 0


def test_the_journal_says_who_and_gains_the_column_on_an_old_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:  # a journal as an earlier version wrote it
        db.execute(
            "CREATE TABLE migration_journal (id INTEGER PRIMARY KEY, plan VARCHAR(200) NOT NULL,"
            " environment VARCHAR(100) NOT NULL, at FLOAT NOT NULL, command VARCHAR(200) NOT"
            " NULL, reason TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO migration_journal VALUES (1, 'p', 'e', 1.0, 'old', 'r', '{}', '{}')"
        )
    store = StateStore(f"sqlite:///{path}", "p", "e")
    store.change("traffic set", "by hand", read_traffic=0.2)
    with acting_as("console (token ops)"):
        store.change("rollback quick", "from the page", read_traffic=0.0)
    store.change("traffic set", "by hand again", read_traffic=0.2)
    assert [(e.command, e.who) for e in store.journal()] == [
        ("old", ""),
        ("traffic set", default_actor()),
        ("rollback quick", "console (token ops)"),
        ("traffic set", default_actor()),
    ]
    assert "@" in default_actor()
    StateStore(f"sqlite:///{path}", "p", "e")  # opening it again adds nothing twice
