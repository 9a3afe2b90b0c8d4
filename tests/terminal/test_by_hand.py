"""The operator's commands in a real terminal (issue 23), on the sample app migrated by hand:
``demo --app-only``, ``provision`` and ``migrate phase 1 --wait`` at 80 columns, then the
checks, a model upgrade with its drain, an import, ``tune`` and ``doctor``, each at one of 80,
120 and 200 columns.

Every command here draws live progress (bars, a spinner with a status line) and then tables;
each is drawn at one width, so that the three widths are all covered without running every
command three times (the folder's tests stay within a few minutes on two cores). Narrow is
where a progress bar or a table breaks first, so the longest commands run at 80 columns.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.terminal import run
from tests.terminal.conftest import APP_NOTES, LONG, ByHand
from tests.terminal.test_main_job import assert_clean

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _copy(by_hand: ByHand, target: Path) -> Path:
    """A copy of the migrated folder for a test that changes it; its plan."""
    shutil.copytree(by_hand.folder, target)
    return target / by_hand.plan.name


def test_the_sample_app_and_phase_1_by_hand_at_80_columns(by_hand: ByHand) -> None:
    assert_clean(by_hand.app, 80)
    assert "migrate it by hand" in by_hand.app.text
    assert re.search(rf"notes\s+{APP_NOTES} of \d+ users", by_hand.app.text), by_hand.app.text
    assert_clean(by_hand.provision, 80)
    shown = by_hand.phase1
    assert_clean(shown, 80)
    assert "phase 1 exit gate passed" in shown.text
    assert "drain: stored of sent" in shown.text  # the drain's bar, drawn live
    assert re.search(rf"{APP_NOTES}/{APP_NOTES}", shown.text), shown.text


@pytest.mark.parametrize(
    ("check", "width"), [("consistency", 200), ("recall", 80), ("quality", 120)]
)
def test_the_checks_draw_their_progress_and_pass(by_hand: ByHand, check: str, width: int) -> None:
    extra = ["--golden", str(by_hand.folder / "data/golden.jsonl")] if check == "quality" else []
    ran = run(
        "--plan", str(by_hand.plan), "check", check, *extra,
        columns=width, timeout=LONG, cwd=by_hand.folder,
    )  # fmt: skip
    assert_clean(ran, width)
    assert "pass" in ran.text


def test_a_model_upgrade_and_its_drain_at_120_columns(by_hand: ByHand, tmp_path: Path) -> None:
    plan = _copy(by_hand, tmp_path / "upgrade")
    where = ("--plan", str(plan))
    upgrade = run(
        *where, "model", "upgrade", "--to", "2", columns=120, timeout=LONG, cwd=plan.parent
    )
    assert_clean(upgrade, 120)
    assert "versions written: 1, 2; read: 1" in upgrade.text
    drain = run(*where, "worker", "run", "--drain", columns=120, timeout=LONG, cwd=plan.parent)
    assert_clean(drain, 120)
    status = run(*where, "model", "status", columns=120, timeout=LONG, cwd=plan.parent)
    assert_clean(status, 120)
    assert re.search(rf"│\s+2 │\s+{APP_NOTES} │", status.text), status.text


def test_an_import_at_80_columns(by_hand: ByHand, tmp_path: Path) -> None:
    plan = _copy(by_hand, tmp_path / "import")
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(3):
        (notes / f"note-{i}.md").write_text(f"# note {i}\n\nsomething worth finding, number {i}\n")
    ran = run(
        "--plan", str(plan), "import", "folder", str(notes), "--user", "writer",
        columns=80, timeout=LONG, cwd=plan.parent,
    )  # fmt: skip
    assert_clean(ran, 80)
    assert re.search(r"\b3\b", ran.text) and "writer" in ran.text, ran.text


def test_tune_at_200_columns(by_hand: ByHand) -> None:
    ran = run(
        "--plan", str(by_hand.plan), "tune", "--sample", "20", "--batch-sizes", "5,10",
        "--concurrency", "1", columns=200, timeout=LONG, cwd=by_hand.folder,
    )  # fmt: skip
    assert_clean(ran, 200)
    assert "max_batch_size" in ran.text


def test_doctor_after_phase_1_at_200_columns(by_hand: ByHand) -> None:
    ran = run("--plan", str(by_hand.plan), "doctor", columns=200, timeout=LONG, cwd=by_hand.folder)
    assert_clean(ran, 200)
    # both systems hold the notes: they are compared, each with its own text preparation
    assert "notes sampled" in ran.text and "the raw text, cut after 500 characters" in ran.text
    assert "healthy: no findings" in ran.text, ran.text
