"""`constellation import` through the real CLI, on a copy of plans/local.yaml before the
migration (write mode old: the app's notes go to the old index, embedded inline by the real
model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constellation.migration.source import create_notes_table
from constellation.plan import load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from tests.support.cli import Invoke
from tests.support.imports import Repo, notion_export

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]


@pytest.fixture
def plan(invoke: Invoke, local_plan: Path) -> Path:
    """The embedded default, provisioned, with the app's (empty) notes table."""
    result = invoke("--plan", str(local_plan), "provision")
    assert result.exit_code == 0, result.output
    create_notes_table(load_plan(local_plan).source_url)
    return local_plan


def test_import_git_reports_sent_then_unchanged(invoke: Invoke, plan: Path, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "handbook")
    repo.commit("first", 1_700_000_000, {"a.md": "alpha handbook page", "b.md": "beta page"})
    first = invoke("--plan", str(plan), "import", "git", str(repo.path), "--user", "u1", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["counts"] == {"sent": 2, "unchanged": 0, "removed": 0, "skipped": 0}
    assert data["write_mode"] == "old" and data["marker"] == repo.git("rev-parse", "HEAD").strip()

    # What the command printed is what the systems hold: the old index has both notes.
    loaded = load_plan(plan)
    with Services(loaded, write=False) as services, Migration(loaded, services) as m:
        for item in data["sent"]:
            assert m.legacy.get("u1", item["note_id"]) is not None
            assert m.source.get("u1", item["note_id"]) is not None

    again = invoke("--plan", str(plan), "import", "git", str(repo.path), "--user", "u1")
    assert again.exit_code == 0, again.output
    rows = {
        cells[0]: cells[1]
        for line in again.stdout.splitlines()
        if line.startswith("│")
        for cells in [[c.strip() for c in line.strip("│").split("│")]]
    }
    assert (rows["sent"], rows["unchanged"], rows["removed"], rows["skipped"]) == (
        "0",
        "2",
        "0",
        "0",
    )
    assert (rows["user"], rows["write mode"]) == ("u1", "old")


def test_import_notion_dry_run_lists_pages(invoke: Invoke, plan: Path, tmp_path: Path) -> None:
    export = notion_export(tmp_path / "Export.zip")
    result = invoke(
        "--plan", str(plan), "import", "notion", str(export), "--user", "u2", "--dry-run"
    )
    assert result.exit_code == 0, result.output
    assert "would send 5" in result.stdout
    assert "Write report" in result.stdout


def test_import_of_a_missing_folder_is_a_usage_error(
    invoke: Invoke, plan: Path, tmp_path: Path
) -> None:
    result = invoke("--plan", str(plan), "import", "folder", str(tmp_path / "nope"), "--user", "u")
    assert result.exit_code == 2
    assert f"error: no folder at {tmp_path / 'nope'}" in result.stderr


def test_a_folder_import_skips_unreadable_and_oversize_files_without_reading_them(
    invoke: Invoke, plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D4, D9, D11, D13: a 40 MB file is skipped by its size, memory staying flat; an
    unreadable file is skipped and named, the rest imported; the dry run decides exactly as
    the run; names reach the terminal escaped (no colour change, no split row)."""
    import tracemalloc

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "fine.md").write_text("a plain note about the garden")
    (folder / "big.md").write_bytes(b"words " * (40 * 1024 * 1024 // 6))
    (folder / "locked.md").write_text("the disk refuses this one")
    (folder / "evil\x1b[31mred.md").write_text("a note with an escape in its name")
    (folder / "two\nlines.md").write_text("a note with a newline in its name")
    real_open = Path.open

    def refusing(path: Path, *args: object, **kwargs: object) -> object:
        if path.name == "locked.md":  # root reads anything: the refusal is the disk's, faked
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", refusing)
    p = ("--plan", str(plan), "import", "folder", str(folder), "--user", "u1")
    dry = invoke(*p, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    tracemalloc.start()
    run = invoke(*p, "--json")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert run.exit_code == 0, run.output
    would, did = json.loads(dry.stdout), json.loads(run.stdout)
    assert peak < 20 * 1024 * 1024, f"peak {peak:,} bytes for a 40 MB file it never sends"
    sent = sorted(n["key"] for n in did["sent"])
    assert sent == sorted(["fine.md", "evil\x1b[31mred.md", "two\nlines.md"])
    assert sorted(n["key"] for n in would["sent"]) == sent
    assert would["skipped"] == did["skipped"]
    skipped = dict(map(tuple, did["skipped"]))
    assert skipped["big.md"].startswith("larger than consumer.max_job_bytes (41,943,")
    assert skipped["locked.md"] == "unreadable: Permission denied"

    shown = invoke(*p[:-2], "--user", "u2")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.stdout and "evil\\x1b[31mred.md" in shown.stdout
    assert "two\\nlines.md" in shown.stdout
    for line in shown.stdout.splitlines():  # every row of a table is whole
        assert not line.startswith("│") or line.rstrip().endswith("│"), line


def test_a_notion_export_nested_deep_is_read_and_a_bad_part_is_skipped_by_name(
    invoke: Invoke, plan: Path, tmp_path: Path
) -> None:
    """D12: zips nested 50 deep are read to the bottom; an inner zip that is no zip is
    skipped and named, and the pages beside it are imported."""
    import io
    import zipfile

    inner = notion_export(tmp_path / "inner.zip").read_bytes()
    for level in range(50):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"Export-Part-{level}.zip", inner)
            if level == 49:
                archive.writestr("Export-Part-broken.zip", b"PK\x03\x04 this is no zip")
        inner = buffer.getvalue()
    export = tmp_path / "deep.zip"
    export.write_bytes(inner)
    result = invoke("--plan", str(plan), "import", "notion", str(export), "--user", "u1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["sent"] >= 4, data  # the pages at the bottom
    (bad,) = [why for item, why in data["skipped"] if item == "Export-Part-broken.zip"]
    assert bad.startswith("not a readable zip")
