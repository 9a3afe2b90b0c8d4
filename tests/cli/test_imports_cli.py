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
