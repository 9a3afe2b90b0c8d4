"""`constellation import git|folder|notion` on the embedded default (real stores, fake model):
a repository with commits, a folder and a Notion export, written through the app's router."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation import records
from constellation.errors import ImportSourceError
from constellation.jobs import Job
from constellation.queues.port import Message
from constellation.worker import build_worker
from phases.imports import import_folder, import_git, import_notion
from tests.support.imports import HOME, MEETING, REPORT_ROW, Repo, notion_export
from tests.support.migration import RigMigration, started

T0 = 1_700_000_000  # a commit time, epoch seconds


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    (tmp_path / "app").mkdir()
    with started(tmp_path / "app", notes=12, users=2) as rigged:
        rigged.state.change("test", "dual writes for the import tests", write_mode="dual")
        yield rigged


def take_jobs(m: RigMigration) -> list[Job]:
    """Every job waiting on the queue, consumed (so the next step sees only its own)."""
    messages: list[Message] = []
    while batch := m.services.queue.receive(max_messages=10, visibility_timeout=60):
        messages += batch
    m.services.queue.delete_batch([msg.receipt for msg in messages])
    jobs = []
    for msg in messages:
        data = json.loads(msg.body)
        jobs.append(
            Job(data["userId"], data["noteId"], data["text"], data["created"], data["version"])
        )
    return jobs


def legacy_record(m: RigMigration, user: str, note: str) -> object:
    return m.legacy.get(user, note)


def test_a_repository_is_sent_once_then_only_its_changes(m: RigMigration, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit(
        "first",
        T0,
        {
            "README.md": "# Handbook\n\nHow we run the notes app.\n",
            "docs/oncall.md": "Page the on-call engineer when the queue backs up.\n",
            "docs/search.md": "Search is filtered by user, always.\n",
            "src/app.py": "print('not a note: the glob leaves it out')\n",
        },
    )
    repo.commit("second", T0 + 60, {"docs/search.md": "Search is filtered by user id, always.\n"})

    first = import_git(m, repo.path, user_id="alice", globs=["*.md"])
    assert first.counts == {"sent": 3, "unchanged": 0, "removed": 0, "skipped": 0}
    sent = {n.key: n.note_id for n in first.sent}
    assert set(sent) == {"README.md", "docs/oncall.md", "docs/search.md"}
    jobs = {j.note_id: j for j in take_jobs(m)}
    assert set(jobs) == set(sent.values())
    # created is the file's last commit time; the text is the file at HEAD
    assert jobs[sent["docs/search.md"]].created == (T0 + 60) * 1000
    assert jobs[sent["docs/search.md"]].text == "Search is filtered by user id, always.\n"
    assert jobs[sent["README.md"]].created == T0 * 1000
    assert {j.user_id for j in jobs.values()} == {"alice"}
    # dual: the old system got each note inline, and the notes source holds each row
    for nid in sent.values():
        assert legacy_record(m, "alice", nid) is not None
        assert m.source.get("alice", nid) is not None

    again = import_git(m, repo.path, user_id="alice", globs=["*.md"])
    assert again.counts == {"sent": 0, "unchanged": 3, "removed": 0, "skipped": 0}
    assert take_jobs(m) == []
    assert again.previous_marker == first.marker

    repo.commit("edit", T0 + 120, {"docs/oncall.md": "Page the on-call engineer at once.\n"})
    edited = import_git(m, repo.path, user_id="alice", globs=["*.md"])
    assert edited.counts == {"sent": 1, "unchanged": 2, "removed": 0, "skipped": 0}
    (job,) = take_jobs(m)
    assert (job.note_id, job.text, job.created) == (
        sent["docs/oncall.md"],
        "Page the on-call engineer at once.\n",
        (T0 + 120) * 1000,
    )

    repo.remove("README.md")
    repo.commit("drop the readme", T0 + 180)
    removed = import_git(m, repo.path, user_id="alice", globs=["*.md"])
    assert removed.counts == {"sent": 0, "unchanged": 2, "removed": 1, "skipped": 0}
    (removal,) = take_jobs(m)
    assert (removal.note_id, removal.text) == (sent["README.md"], "")
    assert m.source.get("alice", sent["README.md"]) is None
    assert legacy_record(m, "alice", sent["README.md"]) is None


def test_imported_notes_reach_the_new_index_and_a_removal_removes_its_record(
    m: RigMigration, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("first", T0, {"a.md": "alpha note", "b.md": "beta note"})
    first = import_git(m, repo.path, user_id="bob")
    ids = {n.key: n.note_id for n in first.sent}
    worker = build_worker(m.plan, m.services, switch=m.state, failures=m.failures)
    worker.run(drain=True)
    index = m.services.index()
    stored = index.get([records.record_id("bob", nid, 1) for nid in ids.values()])
    assert len(stored) == 2

    repo.remove("a.md")
    repo.commit("drop a", T0 + 10)
    assert import_git(m, repo.path, user_id="bob").counts["removed"] == 1
    worker = build_worker(m.plan, m.services, switch=m.state, failures=m.failures)
    worker.run(drain=True)
    left = index.get([records.record_id("bob", nid, 1) for nid in ids.values()])
    assert set(left) == {records.record_id("bob", ids["b.md"], 1)}


def test_a_dry_run_lists_the_changes_and_writes_nothing(m: RigMigration, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("first", T0, {"a.md": "alpha", "b.md": "beta"})
    dry = import_git(m, repo.path, user_id="carol", dry_run=True)
    assert dry.counts["sent"] == 2 and dry.dry_run
    assert take_jobs(m) == []
    # nothing was recorded either: the real import still sends both
    assert import_git(m, repo.path, user_id="carol").counts["sent"] == 2


def test_two_users_importing_one_repository_get_their_own_notes(
    m: RigMigration, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("first", T0, {"a.md": "alpha"})
    a = import_git(m, repo.path, user_id="u-one").sent[0].note_id
    b = import_git(m, repo.path, user_id="u-two").sent[0].note_id
    assert a != b
    assert {j.user_id for j in take_jobs(m)} == {"u-one", "u-two"}


def test_bad_repositories_are_clear_errors(m: RigMigration, tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match="no repository at"):
        import_git(m, tmp_path / "nowhere", user_id="alice")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ImportSourceError, match="is not a git repository"):
        import_git(m, plain, user_id="alice")
    empty = Repo(tmp_path / "empty")
    with pytest.raises(ImportSourceError, match="has no commit 'HEAD'"):
        import_git(m, empty.path, user_id="alice")


def test_a_source_that_suddenly_lists_nothing_removes_nothing(
    m: RigMigration, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("first", T0, {"a.md": "alpha", "b.md": "beta"})
    import_git(m, repo.path, user_id="alice", globs=["*.md"])
    take_jobs(m)
    with pytest.raises(ImportSourceError, match="lists no items, but its last import sent 2"):
        import_git(m, repo.path, user_id="alice", globs=["*.rst"])
    assert take_jobs(m) == []
    emptied = import_git(m, repo.path, user_id="alice", globs=["*.rst"], allow_empty=True)
    assert emptied.counts["removed"] == 2


def test_a_folder_import_skips_binaries_and_follows_edits(m: RigMigration, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "one.md").write_text("first folder note")
    (folder / "sub" / "two.txt").write_text("second folder note")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\0\0JFIF")
    (folder / ".hidden" / "secret.md").write_text("left out: hidden folder")

    first = import_folder(m, folder, user_id="dana")
    assert first.counts == {"sent": 2, "unchanged": 0, "removed": 0, "skipped": 1}
    assert first.skipped == [("photo.jpg", "not text (binary or not UTF-8)")]
    take_jobs(m)
    # the skipped binary is remembered too: an unchanged folder sends and reports nothing
    assert import_folder(m, folder, user_id="dana").counts == {
        "sent": 0,
        "unchanged": 3,
        "removed": 0,
        "skipped": 0,
    }

    (folder / "one.md").write_text("first folder note, edited")
    (folder / "sub" / "two.txt").unlink()
    later = import_folder(m, folder, user_id="dana")
    assert later.counts == {"sent": 1, "unchanged": 1, "removed": 1, "skipped": 0}
    texts = sorted(j.text for j in take_jobs(m))
    assert texts == ["", "first folder note, edited"]


def test_an_edit_stamped_older_than_what_was_sent_still_wins(
    m: RigMigration, tmp_path: Path
) -> None:
    import os

    folder = tmp_path / "notes"
    folder.mkdir()
    note = folder / "n.md"
    note.write_text("v1")
    os.utime(note, (T0 + 100, T0 + 100))
    import_folder(m, folder, user_id="erin")
    (first,) = take_jobs(m)
    note.write_text("v2, copied in with an older time")
    os.utime(note, (T0, T0))
    import_folder(m, folder, user_id="erin")
    (second,) = take_jobs(m)
    assert second.created > first.created  # the worker keeps the newer: this edit must be it


def test_a_notion_export_becomes_notes_with_page_ids_and_edit_times(
    m: RigMigration, tmp_path: Path
) -> None:
    export = notion_export(tmp_path / "Export-1.zip", nested=True)
    first = import_notion(m, export, user_id="fay")
    titles = sorted(n.title for n in first.sent)
    assert titles == [
        "Meeting notes",
        "Tasks / Hidden row",
        "Tasks / Plan trip",
        "Workspace Home",
        "Write report",
    ]
    by_key = {n.key: n for n in first.sent}
    assert {HOME, MEETING, REPORT_ROW} <= set(by_key)
    jobs = {j.note_id: j for j in take_jobs(m)}
    report_job = jobs[by_key[REPORT_ROW].note_id]
    # the row's "Last edited time" (read as UTC), not the zip entry's time
    assert report_job.created == 1704467040000  # 2024-01-05 15:04 UTC
    assert jobs[by_key[MEETING].note_id].created == 1717243200000  # zip entry: 2024-06-01 12:00
    plan_trip = next(n for n in first.sent if n.title == "Tasks / Plan trip")
    assert (
        jobs[plan_trip.note_id].text
        == "# Plan trip\n\nStatus: Todo\nLast edited time: March 2, 2024 9:30 AM"
    )

    # A later export is another file: the same pages update the same notes.
    later = notion_export(
        tmp_path / "Export-2.zip",
        meeting="# Meeting notes\n\nWe shipped the importer.\n",
        with_home=False,
    )
    second = import_notion(m, later, user_id="fay")
    assert second.counts == {"sent": 1, "unchanged": 3, "removed": 1, "skipped": 0}
    assert second.sent[0].note_id == by_key[MEETING].note_id
    assert second.removed[0].note_id == by_key[HOME].note_id


def test_a_file_that_is_not_a_zip_is_a_clear_error(m: RigMigration, tmp_path: Path) -> None:
    bogus = tmp_path / "export.zip"
    bogus.write_text("not a zip")
    with pytest.raises(ImportSourceError, match="is not a readable zip"):
        import_notion(m, bogus, user_id="fay")
