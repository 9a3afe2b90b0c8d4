"""An app's notes table as its code wrote it: NULL owners, BLOB bodies, dates as text.

Each odd row is skipped and reported with its id, the column and the reason (phase 1,
requeue, recover); it never becomes a note of the user "None", never a traceback, and the
phase does not stop on it. ISO 8601 dates stored as text are read as dates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from constellation.errors import SourceError
from constellation.migration.source import NotesSource
from constellation.migration.values import epoch_ms
from phases.migrate.phase1 import phase1
from phases.operate.recover import recover
from phases.operate.requeue import requeue
from tests.support.migration import RigMigration, started

T0 = 1_700_000_000_000
#: id → (user, content, created, why it is skipped or None)
ODD = {
    "odd-null-user": (None, "a note without an owner", T0, "user_id: no user (NULL)"),
    "odd-blank-user": ("  ", "a note of a blank owner", T0, "user_id: empty user"),
    "odd-blob": ("u-odd", b"\x89PNG\r\n binary", T0, "content: binary (BLOB of 13 bytes)"),
    "odd-null-content": ("u-odd", None, T0, "content: no content (NULL)"),
    "odd-bad-date": ("u-odd", "next tuesday's plan", "next tuesday", "created: not a date"),
    "odd-text-date": ("u-odd", "a note dated as text", "2026-01-01", None),
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path, notes=30, users=3) as m:
        path = m.plan.source_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            # the app's own table, without our NOT NULLs: it takes what its code gives it
            db.executescript(
                "CREATE TABLE loose (id TEXT PRIMARY KEY, user_id TEXT, content TEXT,"
                " created, updated);"
                "INSERT INTO loose SELECT * FROM notes; DROP TABLE notes;"
                "ALTER TABLE loose RENAME TO notes;"
            )
            db.executemany(
                "INSERT INTO notes (id, user_id, content, created, updated) VALUES (?,?,?,?,?)",
                [(i, u, c, t, T0) for i, (u, c, t, _) in ODD.items()],
            )
            # a real user called "None", who must see only their own note
            db.execute(
                "INSERT INTO notes VALUES ('none-1', 'None', 'the real None user writes', ?, ?)",
                (T0, T0),
            )
        yield m


def expected_skips() -> dict[str, str]:
    return {i: why for i, (*_, why) in ODD.items() if why}


def test_phase_1_skips_odd_rows_with_their_id_column_and_reason(app: RigMigration) -> None:
    report = phase1(app, wait=True)
    skipped = {s.id: f"{s.column}: {s.reason}" for s in report.skipped}
    assert set(skipped) == set(expected_skips())
    for note_id, why in expected_skips().items():
        assert skipped[note_id].startswith(why), (note_id, skipped[note_id])
    backfill = next(s for s in report.steps if s.resource == "backfill")
    assert "5 source row(s) skipped" in backfill.detail
    # the phase ran on: dual writes, every usable note stored
    assert app.state.read().write_mode == "dual"
    index = app.services.index()
    assert index.count() == 30 + 2  # the sample, the real "None" user's note, the text date
    # no note of a missing owner became the user "None"'s
    hits = app.new_search("a note without an owner", "None", 10)
    assert [h.note_id for h in hits] == ["none-1"]
    (dated,) = index.get(["u-odd:odd-text-date:v1"]).values()
    assert dated.metadata["created"] == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    users = app.source.users()
    assert users.count("None") == 1 and "  " not in users  # the real user only


def test_requeue_and_recover_report_the_same_rows(app: RigMigration) -> None:
    assert phase1(app, wait=True).ok
    sent = requeue(app, everything=True)
    assert {s.id for s in sent.skipped} == set(expected_skips())
    found = recover(app)
    assert {s.id for s in found.skipped} == set(expected_skips())
    # skipped rows are not reported as missing notes, forever requeued
    assert not {a.note_id for a in found.affected} & set(expected_skips())
    with pytest.raises(ValueError, match=r"cannot send it: note odd-blob: content: binary"):
        requeue(app, user_id="u-odd", note_id="odd-blob")


def test_dates_are_read_from_numbers_datetimes_and_iso_text() -> None:
    assert epoch_ms(None) == 0
    assert epoch_ms(1_700_000_000) == T0  # seconds
    assert epoch_ms(T0) == T0
    assert epoch_ms("1700000000") == T0
    assert epoch_ms(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)) == T0
    assert epoch_ms("2023-11-14T22:13:20Z") == T0
    assert epoch_ms("2023-11-14 22:13:20") == T0  # SQLite's CURRENT_TIMESTAMP, in UTC
    for bad in ("yesterday", True, b"\x00", float("nan")):
        with pytest.raises(ValueError, match="not a date"):
            epoch_ms(bad)


def test_a_source_lists_no_user_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    with sqlite3.connect(tmp_path / "notes.db") as db:
        db.execute("CREATE TABLE notes (id TEXT, user_id TEXT, content TEXT, created, updated)")
        db.execute("INSERT INTO notes VALUES ('1', NULL, 'x', 0, 0), ('2', 'u', 'y', 0, 0)")
    columns = {"id": "id", "user": "user_id", "content": "content"}
    source = NotesSource(url, "notes", {**columns, "created": "created", "updated": "updated"})
    assert source.users() == ["u"]
    assert [n.id for n in source.iter_notes()] == ["2"]
    assert [str(s) for s in source.skipped.values()] == ["note 1: user_id: no user (NULL)"]
    source.close()


def test_phase_1_changes_nothing_when_the_source_cannot_be_read(app: RigMigration) -> None:
    assert app.source.count() > 0  # opened (its table read) before the table goes away
    path = app.plan.source_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE notes")
    before = app.state.read()
    with pytest.raises(SourceError, match="reading notes failed"):
        phase1(app)
    after = app.state.read()
    assert (after.phase, after.write_mode) == (before.phase, before.write_mode) == (0, "old")
