"""The app's layout and text preparation from the plan, and the source's bounds on its times."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from constellation.errors import PlanError
from constellation.ledger.db import engine
from constellation.migration.legacy.layout import AppText, Layout
from constellation.migration.source import Note, NotesSource
from constellation.plan import load_plan
from tests.fakes import RecordingEmbedder


def legacy_issues(tmp_path: Path, legacy: str) -> list[str]:
    path = tmp_path / "plan.yaml"
    path.write_text("legacy:\n" + legacy)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return [str(issue) for issue in caught.value.issues]


def test_bad_layouts_fail_naming_file_line_and_field(tmp_path: Path) -> None:
    (issue,) = legacy_issues(tmp_path, "  layout:\n    id: '{note}'\n")
    assert "plan.yaml:3: legacy.layout.id: unknown field(s) {note}" in issue
    (issue,) = legacy_issues(tmp_path, "  layout:\n    id: 'n-{userId}'\n")
    assert "must contain {noteId}" in issue
    (issue,) = legacy_issues(tmp_path, "  layout:\n    id: '{userId}{noteId}'\n")
    assert "needs text between its fields" in issue
    (issue,) = legacy_issues(tmp_path, "  layout:\n    table: notes\n")
    assert "table do not apply to the chroma adapter" in issue
    (issue,) = legacy_issues(tmp_path, "  adapter: pgvector\n")
    assert "needs legacy.url" in issue
    (issue,) = legacy_issues(tmp_path, "  adapter: pgvektor\n")
    assert "did you mean 'pgvector'" in issue


def test_without_a_layout_the_old_index_is_in_our_record_format(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("name: notes\n")
    layout = Layout.from_config(load_plan(path).legacy)
    assert layout.ours and layout.record_id("a:b", "c", 1) == "a%3Ab:c:v1"
    meta = layout.metadata(Note("c", "a:b", "text", 5, 7), 1, "text", "m")
    assert (meta["userId"], meta["noteId"], meta["version"], meta["created"]) == ("a:b", "c", 1, 7)
    assert layout.note_of("a%3Ab:c:v1", meta) == ("a:b", "c")


def test_an_app_layout_builds_and_reads_back_its_ids() -> None:
    plain = Layout("{noteId}", "owner", None)
    assert plain.record_id("u1", "n-7", 1) == "n-7"
    assert plain.metadata(Note("n-7", "u1", "t", 1, 1), 1, "t", "m") == {"owner": "u1"}
    assert plain.note_of("n-7", {"owner": "u1", "title": "x"}) == ("u1", "n-7")
    assert plain.note_of("n-7", {"title": "x"}) is None  # no user: not a note of ours
    nested = Layout("{userId}/note-{noteId}", "owner", None)
    assert nested.record_id("u1", "a/b", 1) == "u1/note-a/b"
    assert nested.note_of("u1/note-a/b", {"owner": "u1"}) == ("u1", "a/b")
    assert nested.note_of("u2/note-a/b", {"owner": "u1"}) is None  # the id names another user
    assert nested.problems("other-7", {"owner": "u1"}) == [
        "record id 'other-7' does not match the id '{userId}/note-{noteId}'"
    ]
    keyed = Layout("{noteId}", "owner", "nid")
    assert keyed.metadata(Note("n", "u", "t", 1, 1), 1, "t", "m") == {"owner": "u", "nid": "n"}
    assert keyed.problems("n", {"owner": "u"}) == ["record 'n' has no metadata key 'nid'"]


def test_the_apps_text_preparation() -> None:
    embedder = RecordingEmbedder(max_tokens=3)
    text = "  Café\u200b  au\n\nlait  with sugar "
    ours = AppText().prepare([text, " \n "], embedder)
    assert ours == ["Café au lait", ""]  # NFC, zero-width removed, collapsed, cut in tokens
    raw = AppText(normalize=False, max_chars=12).prepare([text, " \n "], embedder)
    assert raw == [text[:12], ""]


def test_changed_since_bounds_epoch_seconds_and_milliseconds_columns(tmp_path: Path) -> None:
    for unit in (1, 1000):
        url = f"sqlite:///{tmp_path}/notes-{unit}.db"
        db = engine(url)
        with db.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE notes (id TEXT PRIMARY KEY, user_id TEXT, content TEXT, created INTEGER, updated INTEGER)"
                )
            )
            for note_id, created, updated in [
                ("a", 100, 100),
                ("b", 100, 2_000),
                ("c", 1_500, 1_500),
            ]:
                base = 1_767_225_600  # 2026-01-01 in seconds
                conn.execute(
                    sa.text("INSERT INTO notes VALUES (:i, 'u', 'x', :c, :u)"),
                    {"i": note_id, "c": (base + created) * unit, "u": (base + updated) * unit},
                )
        db.dispose()
        source = NotesSource(
            url,
            "notes",
            {
                "id": "id",
                "user": "user_id",
                "content": "content",
                "created": "created",
                "updated": "updated",
            },
        )
        since_ms = (1_767_225_600 + 1_000) * 1000
        assert [n.id for n in source.changed_since(since_ms)] == ["b", "c"], unit
        source.close()
