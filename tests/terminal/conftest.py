"""Shared runs for the terminal tests: the demo, and the sample app migrated by hand to phase 1,
each run once in a pseudo-terminal and then read (or copied) by the tests that need it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.cli import REPO
from tests.support.terminal import Finished, run

#: sizes that keep the whole folder's tests within a few minutes on two cores: the commands'
#: terminal behaviour does not depend on how many notes they work through
DEMO_NOTES = 100
APP_NOTES = 60
#: how long one command may take on a busy two-core machine
LONG = 600.0


def small_plan(folder: Path) -> Path:
    """plans/local.yaml in ``folder`` (its data beside it) with smaller gates: fewer
    comparisons per traffic step and a smaller consistency sample."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = yaml.safe_load((REPO / "plans/local.yaml").read_text())
    plan["data_dir"] = "./data"
    plan["migration"]["traffic"]["min_comparisons"] = 20
    plan["migration"]["consistency"]["sample_size"] = 30
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


@dataclass(frozen=True)
class DemoRun:
    folder: Path
    plan: Path
    demo: Finished


@dataclass(frozen=True)
class ByHand:
    """The sample app built (``demo --app-only``), provisioned and through phase 1."""

    folder: Path
    plan: Path
    app: Finished
    provision: Finished
    phase1: Finished


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``constellation demo`` run once, in a 120-column terminal."""
    folder = tmp_path_factory.mktemp("terminal-demo")
    plan = small_plan(folder)
    demo = run(
        "--plan", str(plan), "demo", "--notes", str(DEMO_NOTES), "--dwell", "1s",
        columns=120, timeout=LONG, cwd=folder,
    )  # fmt: skip
    return DemoRun(folder, plan, demo)


@pytest.fixture(scope="session")
def by_hand(tmp_path_factory: pytest.TempPathFactory) -> ByHand:
    """The sample app built and migrated to phase 1 by hand, in an 80-column terminal."""
    folder = tmp_path_factory.mktemp("terminal-by-hand")
    plan = small_plan(folder)
    where = ("--plan", str(plan))
    app = run(
        *where,
        "demo",
        "--app-only",
        "--notes",
        str(APP_NOTES),
        columns=80,
        timeout=LONG,
        cwd=folder,
    )
    provision = run(*where, "provision", columns=80, timeout=LONG, cwd=folder)
    phase1 = run(*where, "migrate", "phase", "1", "--wait", columns=80, timeout=LONG, cwd=folder)
    return ByHand(folder, plan, app, provision, phase1)
