"""`plan validate`, `provision` (twice, dry run, conflicts) and `describe` through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import REPO, Invoke


def test_plan_validate_prints_the_resolved_plan(invoke: Invoke, local_plan: Path) -> None:
    result = invoke("--plan", str(local_plan), "plan", "validate", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["queue"]["name"] == "embed-queue"
    assert plan["data_dir"] == str(local_plan.parent / "data")


def test_plan_validate_masks_secrets(invoke: Invoke, tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("index:\n  url: http://chroma:8000\n  auth_token: hunter2\n")
    result = invoke("plan", "validate", "--plan", str(plan))
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "auth_token: '**********'" in result.stdout


def test_plan_validate_names_the_misspelt_key_and_its_line(invoke: Invoke, tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("name: notes\nconsumer:\n  max_batch_sise: 10\n")
    result = invoke("--plan", str(plan), "plan", "validate")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: invalid plan (1 problem):\n"
        f"  {plan}:3: consumer.max_batch_sise: unknown key 'max_batch_sise' "
        "(did you mean 'max_batch_size'?)\n"
    )


@pytest.mark.usefixtures("shared_model")
def test_describe_says_which_queues_keep_one_notes_jobs_in_order(
    invoke: Invoke, local_plan: Path
) -> None:
    plan = local_plan.read_text().replace("queue:\n", "queue:\n  fifo: true\n", 1)
    plan = plan.replace("name: embed-queue\n", "name: embed-queue.fifo\n").replace(
        "dead_letter: embed-dead-letter\n", "dead_letter: embed-dead-letter.fifo\n"
    )
    local_plan.write_text(plan)
    assert invoke("provision", "--plan", str(local_plan)).exit_code == 0
    described = invoke("describe", "--plan", str(local_plan), "--json")
    assert [q["info"]["fifo"] for q in json.loads(described.stdout)["queues"]] == [True, True]
    table = invoke("describe", "--plan", str(local_plan)).stdout
    assert table.count("FIFO, per note") == 2 and "standard" not in table


@pytest.mark.usefixtures("shared_model")
def test_provision_twice_creates_then_changes_nothing(invoke: Invoke, local_plan: Path) -> None:
    first = invoke("provision", "--plan", str(local_plan), "--json")
    assert first.exit_code == 0, first.output
    outcomes = {r["resource"]: r["outcome"] for r in json.loads(first.stdout)["results"]}
    assert outcomes == {
        "model v1 all-MiniLM-L6-v2": "checked",
        "migration state": "created",  # recorded before anything else exists
        "queue embed-dead-letter": "created",
        "queue embed-queue": "created",
        "index dome-notes-dev": "created",
    }
    second = invoke("provision", "--plan", str(local_plan))
    assert second.exit_code == 0, second.output
    assert second.stdout.count("unchanged") == 4
    assert "created" not in second.stdout
    assert "everything already exists; nothing was changed" in second.stderr

    described = invoke("describe", "--plan", str(local_plan), "--json")
    assert described.exit_code == 0
    report = json.loads(described.stdout)
    embed, dead = report["queues"]
    assert embed["info"]["redrive"] == {"dead_letter": "embed-dead-letter", "max_receive_count": 4}
    assert dead["info"]["redrive"] is None
    (index,) = report["indexes"]
    assert index["info"]["dimension"] == 384
    assert index["info"]["metric"] == "cosine"
    assert index["info"]["metadata_fields"] == {
        "userId": "string",
        "noteId": "string",
        "version": "number",
    }


@pytest.mark.usefixtures("shared_model")
def test_dry_run_touches_nothing(invoke: Invoke, local_plan: Path) -> None:
    result = invoke("--plan", str(local_plan), "provision", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("would create") == 4  # the state's record, queues, index
    assert not (local_plan.parent / "data").exists()


def test_describe_before_provision_says_what_is_missing(invoke: Invoke, local_plan: Path) -> None:
    result = invoke("--plan", str(local_plan), "describe")
    assert result.exit_code == 0
    assert result.stdout.count("missing") == 3
    assert "run `constellation provision`" in result.stderr
    assert not (local_plan.parent / "data").exists()


@pytest.mark.usefixtures("shared_model")
def test_conflicting_index_is_reported_and_nothing_is_created(
    invoke: Invoke, local_plan: Path
) -> None:
    from constellation.index.chroma import ChromaStore
    from constellation.index.port import IndexSpec

    with ChromaStore(path=local_plan.parent / "data" / "chroma") as store:
        store.create(IndexSpec("dome-notes-dev", 768, "cosine"))
    result = invoke("--plan", str(local_plan), "provision")
    assert result.exit_code == 1
    assert "index dome-notes-dev: dimension is 768, plan wants 384" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not (local_plan.parent / "data" / "queue.db").exists()


def test_global_options_work_before_or_after_the_command(invoke: Invoke, tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("environments:\n  staging:\n    queue: {name: q-staging}\n")
    before = invoke("--plan", str(plan), "--env", "staging", "plan", "validate", "--json")
    after = invoke("plan", "validate", "--json", f"--plan={plan}", "--env", "staging")
    assert before.exit_code == after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(after.stdout)["queue"]["name"] == "q-staging"


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0\n"
        "heavy = [m for m in ('boto3', 'chromadb', 'torch', 'sentence_transformers', 'fastapi', 'uvicorn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == ""


def test_version_prints_the_package_version(invoke: Invoke) -> None:
    from importlib.metadata import version

    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"constellation {version('constellation')}\n")


def _commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_report_command_takes_the_one_shared_json_option() -> None:
    """``--json`` switches the invocation's output object only through the option declared in
    cli/params.py: a command declaring its own would print tables where JSON was asked for."""
    import typer.main

    from cli.main import app
    from cli.params import Json

    shared = Json.__metadata__[0].callback
    without = set()
    for name, command in _commands(typer.main.get_command(app)):
        options = [p for p in command.params if "--json" in p.opts]
        if not options:
            without.add(name)
            continue
        assert options[0].callback is not None, name
        # Typer wraps the callback; the wrapped function is the shared one.
        assert options[0].callback.__wrapped__ is shared, name
    # The two commands that write files or draw a live screen instead of printing a report.
    assert without == {"dashboard", "monitoring export"}
