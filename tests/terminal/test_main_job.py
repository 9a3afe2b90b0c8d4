"""The main job in a real terminal (issue 23): ``constellation demo`` in a 120-column pty, then
``doctor`` and the live ``dashboard`` on what it left, at 80, 120 and 200 columns.

Which command at which width: the demo draws the most (bars, spinners, the notes above them,
tables) and runs once, at the width a person most often has; ``doctor`` and the dashboard are
the screens whose layout depends on the width, so they are drawn narrow and wide.
"""

from __future__ import annotations

import re

import pytest

from tests.support.terminal import Finished, Terminal, run
from tests.terminal.conftest import LONG, DemoRun

pytestmark = [pytest.mark.slow, pytest.mark.model]


def assert_clean(ran: Finished, width: int) -> None:
    """Exit 0, no traceback, nothing wider than the terminal."""
    assert ran.exit_code == 0, ran.text
    assert "Traceback" not in ran.text, ran.text
    assert all(len(line) <= width for line in ran.lines), ran.text


def test_the_demo_runs_in_a_120_column_terminal(demo_run: DemoRun) -> None:
    shown = demo_run.demo
    assert_clean(shown, 120)
    for step in ("sample app", "provision", "phase 1", "phase 2", "phase 3", "phase 4"):
        assert re.search(rf"│ {step}[^│]*│ ok", shown.text), step
    assert "complete (phase 4)" in shown.text
    # the live display drew its bars; their last state stays on the screen
    assert "old index (inline embedding)" in shown.text and "drain: stored of sent" in shown.text
    # a newcomer's next step: users to search as, and a search that finds something
    assert "a few of the sample app's users" in shown.text
    assert re.search(r"try a search: constellation query .+ --user user-\d\d", shown.text)


def test_doctor_right_after_the_demo_exits_0_at_80_columns(demo_run: DemoRun) -> None:
    ran = run("--plan", str(demo_run.plan), "doctor", columns=80, timeout=LONG, cwd=demo_run.folder)
    assert_clean(ran, 80)
    assert "healthy: no findings" in ran.text
    assert "partitions by user" in ran.text  # the index as it is, from its manifest
    assert "{" not in ran.text and "True" not in ran.text  # evidence as lines, not raw JSON


@pytest.mark.parametrize(("width", "key"), [(80, "q"), (120, "ctrl-c"), (200, "q")])
def test_the_dashboard_fits_the_terminal_and_quits_with_exit_0(
    demo_run: DemoRun, width: int, key: str
) -> None:
    terminal = Terminal(
        "--plan", str(demo_run.plan), "dashboard", "--interval", "1",
        columns=width, rows=50, cwd=demo_run.folder,
    )  # fmt: skip
    terminal.expect("q or Ctrl-C to quit", LONG)
    terminal.expect("Index size", 60)  # the whole frame is drawn
    if key == "q":
        terminal.press("q")
    else:
        terminal.ctrl_c()
    ran = terminal.finish(60)
    assert_clean(ran, width)
    assert "dashboard closed" in ran.text and "interrupted" not in ran.text
    assert "…" not in ran.text  # no figure or label cut short
    for title in ("Queue depth", "Processing time", "Query response time", "Index size"):
        assert title in ran.text
    # every series line keeps its last and highest figure
    index_line = next(line for line in ran.lines if re.search(r"\bv1\b", line))
    assert re.search(r"\b[0-9,]+\b.*\b[0-9,]+\b\s*│?$", index_line), index_line
    if width == 80:
        assert "┃" not in ran.text  # stacked panels: no table squeezed to fit
        assert re.search(r"^\s+v1\s.*last [0-9,]+\s+max [0-9,]+$", ran.text, re.M), ran.text
