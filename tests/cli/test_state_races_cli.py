"""Two operators' terminals at once: real `constellation` processes race on one state file.

Each command either does what it says or refuses in one line (no traceback), and afterwards
the state holds every invariant and what each command printed (see
:mod:`tests.integration.test_state_stress` for fifty pairs raced at the function level).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from constellation.ledger.state import StateStore
from constellation.plan import load_plan
from tests.support.cli import REPO
from tests.support.migration import write_plan
from tests.support.operators import check_invariants, check_journal

RACES = [
    ("phase 3 running", ["rollback", "quick"], ["rollback", "full"]),
    ("phase 2 at 20%", ["traffic", "set", "0.5", "--yes"], ["rollback", "full"]),
    ("phase 2 at 20%", ["rollback", "full"], ["traffic", "set", "0.5", "--yes"]),
]
STARTS = {
    "phase 3 running": {"phase": 3, "status": "running", "write_mode": "dual", "read_traffic": 1.0},
    "phase 2 at 20%": {
        "phase": 2,
        "status": "running",
        "write_mode": "dual",
        "read_traffic": 0.2,
        "traffic_step": 0,
    },
}


@pytest.mark.parametrize(("start", "first", "second"), RACES)
def test_racing_commands_each_do_what_they_say_or_refuse_in_one_line(
    tmp_path: Path, start: str, first: list[str], second: list[str]
) -> None:
    plan_path = write_plan(tmp_path)
    plan = load_plan(plan_path)
    store = StateStore(plan.state_url, plan.name, plan.environment)
    store.change("test", start, **STARTS[start])
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    command = [sys.executable, "-m", "cli.main", "--plan", str(plan_path)]
    processes = [
        subprocess.Popen(
            [*command, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for args in (first, second)
    ]
    results = [(p.wait(timeout=300), *(s.decode() for s in p.communicate())) for p in processes]
    state = store.read()
    check_invariants(state)
    journal = store.journal()
    check_journal(journal, state)
    for args, (code, out, err) in zip((first, second), results, strict=True):
        name = " ".join(args[:2])
        assert "Traceback" not in out + err, (args, out, err)
        if code == 0 and name not in [e.command for e in journal]:
            # a quick rollback after a full one changes nothing, and says what stands
            assert name == "rollback quick", (args, out)
            assert "rolled back fully" in out or "already rolled back" in out, out
        elif code != 0:
            # refused: one line saying why (and nothing of it journaled)
            lines = [line for line in err.splitlines() if line.strip()]
            assert len(lines) == 1 and "write mode old" in lines[0], (args, err)
            assert name not in [e.command for e in journal]
    if ["rollback", "full"] in (first, second):
        assert (state.status, state.write_mode) == ("rolled_back", "old")
    store.close()
