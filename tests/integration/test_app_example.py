"""The operator guide's app example, run as written (only the plan path changed) against a real
embedded plan with the real model: the write reaches the systems the write mode names, and the
search answers."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from constellation.plan import load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from tests.support.cli import REPO, Invoke

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]


def readme_example() -> str:
    """The operator guide's Python block that gets a router from the client."""
    blocks = re.findall(
        r"```python\n(.*?)```", (REPO / "docs" / "operator-guide.md").read_text(), re.S
    )
    (block,) = [b for b in blocks if "client.router()" in b]
    return block


def test_the_readme_app_example_imports_from_constellation_only() -> None:
    imported = set()
    for node in ast.walk(ast.parse(readme_example())):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert imported == {"constellation"}


def run_example(plan: Path, t0: int, t1: int) -> dict[str, Any]:
    code = readme_example()
    assert '"plans/production.yaml"' in code
    namespace: dict[str, Any] = {"t0": t0, "t1": t1}
    exec(
        compile(
            code.replace('"plans/production.yaml"', repr(str(plan))),
            "docs/operator-guide.md",
            "exec",
        ),
        namespace,
    )
    namespace["client"].close()
    return namespace


def test_the_readme_app_example_follows_the_write_mode(invoke: Invoke, local_plan: Path) -> None:
    assert invoke("--plan", str(local_plan), "provision").exit_code == 0
    plan = load_plan(local_plan)

    def look() -> tuple[int, bool]:
        """(jobs on the embed queue, whether the old system holds note n1 of u1)."""
        with Services(plan, write=False) as services, Migration(plan, services) as m:
            return services.queue.depth().total, m.legacy.get("u1", "n1") is not None

    def forget_old() -> None:
        """Remove n1 from the old system, so that the next look shows whether it was written
        again (the sample app's layout keeps no edit time to tell writes apart)."""
        with Services(plan) as services, Migration(plan, services) as m:
            m.legacy.delete_many([("u1", "n1")])

    def set_state(**changes: Any) -> None:
        with Services(plan, write=False) as services, Migration(plan, services) as m:
            m.state.change("test", "the app example", **changes)

    # Write mode old (before phase 1): the old system only; the search is served by it.
    ran = run_example(local_plan, t0=1_000, t1=2_000)
    assert look() == (0, True)
    assert [h.note_id for h in ran["hits"]] == ["n1"]

    # Dual: both systems (the new side is a job on the queue).
    set_state(write_mode="dual")
    forget_old()
    ran = run_example(local_plan, t0=1_000, t1=3_000)
    assert look() == (1, True)
    assert [h.note_id for h in ran["hits"]] == ["n1"]

    worker = invoke("--plan", str(local_plan), "worker", "run", "--drain")
    assert worker.exit_code == 0, worker.output

    # New (phase 4): the queue only; the old system is not written, and the new index
    # answers (the old one keeps no edit time: its results carry created 0).
    forget_old()
    set_state(write_mode="new", read_traffic=1.0)
    ran = run_example(local_plan, t0=1_000, t1=4_000)
    assert look() == (1, False)
    (hit,) = ran["hits"]
    assert (hit.note_id, hit.created) == ("n1", 3_000)
