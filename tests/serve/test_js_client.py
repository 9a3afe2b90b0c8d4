"""The JavaScript client (``examples/``), run with Node against the served app: it embeds a note,
finds it with ``/query``, and searches through ``/search`` while the operator walks phase 2 to
its exit gate and then rolls back; the searches follow, within ``state_refresh``."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from constellation.ledger.notes import Notes, step_started_at
from constellation.migration.router import bucket
from phases.migrate.phase2 import phase2
from phases.migrate.rollback import rollback_quick
from phases.sample_notes import search_phrases
from phases.steps import StepResult
from tests.serve.conftest import AppServer
from tests.support.cli import REPO
from tests.support.serve import WRITE_TOKEN

pytestmark = [pytest.mark.model]

NODE = shutil.which("node")


class NodeApp:
    """``node examples/notes-app.mjs``; its JSON lines collected as they come."""

    def __init__(self, app: AppServer, searches: Path, *args: str) -> None:
        assert NODE, "node is not installed (Node 20 is part of every machine's set-up)"
        env = {"CONSTELLATION_URL": app.serve.url, "CONSTELLATION_TOKEN": WRITE_TOKEN, "PATH": ""}
        self.process = subprocess.Popen(
            [NODE, str(REPO / "examples/notes-app.mjs"), "--searches", str(searches), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def searches(self, since: float = 0.0) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "search" and e["at"] / 1000 >= since]

    def wait_for(self, what: str, condition: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"node app: no {what} ({self.process.poll()}): {stderr}")
            time.sleep(0.1)

    def finish(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(60)
        self._reader.join(10)
        return code


def test_js_app_embeds_queries_and_searches_while_phase2_walks_and_rolls_back(
    app_server: AppServer, tmp_path: Path
) -> None:
    app = app_server
    refresh = app.plan.migration.traffic.state_refresh
    owner = app.owner
    pairs = list(itertools.islice(search_phrases(app.notes, seed=3), 40))
    searches = tmp_path / "searches.json"
    searches.write_text(json.dumps(pairs))
    with app.migration() as m:
        # phase 2's first gate reads the comparisons from here on: the app's searches below
        mark = m.clock()
        m.state.change("test", "fresh comparisons", notes=Notes(step_started_at=mark))
    node = NodeApp(
        app, searches, "--user", "js-user", "--note", "js-note", "--text", "Pick up the bike"
    )
    steps: list[tuple[float, str]] = []
    try:
        node.wait_for("note found", lambda: any(e["event"] == "found" for e in node.events))
        with app.migration() as m:
            enough = app.plan.migration.traffic.min_comparisons

            def compared_since_step() -> bool:
                since = step_started_at(m.state.read().notes)
                return m.comparisons.summary(since).comparisons >= enough

            def stepped(result: StepResult) -> None:
                steps.append((time.time(), result.detail))

            # The operator walks phase 2 a step at a time (`migrate phase 2 --step`), letting the
            # app's searches feed each gate, then once more for the exit gate.
            for _ in range(4):
                node.wait_for("comparisons for the gate", compared_since_step)
                report = phase2(m, mode="step", on_step=stepped)
                assert report.ok, report.gate
            assert m.state.read().status == "passed", report.message
            top = time.time()

            def moved_searches_at_top() -> int:
                # counted as the assertions below count them: on a quiet machine the app makes
                # several searches a second, and a looser count was met by searches the
                # assertions (after the refresh, by moved users) do not see
                seen = node.searches(top + refresh + 0.2)
                return sum(1 for e in seen if bucket(e["userId"]) < 0.8)

            node.wait_for("searches at 80%", lambda: moved_searches_at_top() >= 4, timeout=120)
            rollback_quick(m, reason="test: the operator rolls back")
            rolled = time.time()
        node.wait_for(
            "searches after the rollback", lambda: len(node.searches(rolled + refresh + 0.2)) >= 4
        )
    finally:
        code = node.finish()
        app.restore()
    assert code == 0
    assert [detail for _, detail in steps] == [
        "20% of users on the new system",
        "50% of users on the new system",
        "80% of users on the new system",
    ]
    events = node.events
    assert events[0]["event"] == "embedded" and events[0]["accepted"] == 1
    everything = node.searches()
    # no search ever returned another user's note
    assert all(owner[n] == e["userId"] for e in everything for n in e["noteIds"])
    # users above the highest step were never moved
    assert all(e["servedBy"] == "old" for e in everything if bucket(e["userId"]) >= 0.8)
    at_top = [
        e
        for e in node.searches(top + refresh + 0.2)
        if e["at"] / 1000 < rolled and bucket(e["userId"]) < 0.8
    ]
    assert at_top and any(e["servedBy"] == "new" for e in at_top)
    after = node.searches(rolled + refresh + 0.2)
    assert after and all(e["servedBy"] == "old" for e in after)
