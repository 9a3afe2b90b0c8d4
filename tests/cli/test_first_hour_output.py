"""The operator's first hour, output: piped output is not cut, narrow terminals get key/value
blocks, times are ISO 8601 in JSON and local time in tables, dry runs say "would", flags have
no value placeholder, shell completion and examples in ``--help`` (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import CONSTELLATION, provision_plan, write_plan
from tests.support.cli import Invoke

LONG = {
    "queue": {
        "name": "embed-queue-for-the-notes-app-in-the-staging-environment-of-team-blue",
        "dead_letter": "embed-dead-letter-for-the-notes-app-in-the-staging-environment",
    },
    "index": {"name": "notes-index-of-the-staging-environment-of-team-blue-v1"},
}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSTELLATION, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_piped_describe_keeps_full_names(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "local.yaml", "local.yaml", LONG)
    provision_plan(plan)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["NO_COLOR"] = "1"

    result = _run("--plan", str(plan), "describe", env=env)  # stdout is a pipe

    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    for name in (*LONG["queue"].values(), LONG["index"]["name"]):
        assert any(name in line for line in lines), (name, result.stdout)
    # one row a line: the embed queue's row holds its name, its state and its redrive
    row = next(line for line in lines if LONG["queue"]["name"] in line)
    assert "ok" in row and f"{LONG['queue']['dead_letter']} after 4" in row


def test_a_piped_error_is_one_line_however_long(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    missing = tmp_path / ("a-folder-with-a-long-name-" * 4) / "plan.yaml"
    result = _run("--plan", str(missing), "describe", env=env)
    assert result.returncode == 2
    assert str(missing) in result.stderr.splitlines()[1]  # the path is never cut in two


def test_a_narrow_terminal_gets_key_value_blocks(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = write_plan(tmp_path / "local.yaml", "local.yaml")
    provision_plan(plan)
    monkeypatch.setenv("COLUMNS", "60")
    invoke("--plan", str(plan), "consumer", "disable", "--reason", "a reason to see in full")

    result = invoke("--plan", str(plan), "migrate", "status")

    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert all(len(line) <= 60 for line in result.stdout.splitlines()), result.stdout
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert any(line.split() == ["write", "mode", "old"] for line in lines), result.stdout
    assert any(line.split()[:2] == ["command", "consumer"] for line in lines), result.stdout
    assert any("a reason to see in full" in line for line in lines)
    # a local time, in full
    updated = next(line for line in lines if line.startswith("updated"))
    datetime.strptime(updated.split(None, 1)[1].strip(), "%Y-%m-%d %H:%M:%S")


def test_times_are_iso_8601_in_json_and_local_time_in_tables(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path / "local.yaml", "local.yaml")
    provision_plan(plan)
    invoke("--plan", str(plan), "consumer", "disable")
    status = json.loads(invoke("--plan", str(plan), "migrate", "status", "--json").stdout)
    at = status["journal"][-1]["at"]
    assert datetime.fromisoformat(at).tzinfo is not None, at
    assert datetime.fromisoformat(status["state"]["updated_at"]) == datetime.fromisoformat(at)
    table = invoke("--plan", str(plan), "migrate", "status").stdout
    local = datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert local in table


def test_dry_runs_say_would(invoke: Invoke, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "local.yaml", "local.yaml")
    provision_plan(plan)
    before = invoke("--plan", str(plan), "migrate", "status", "--json").stdout

    result = invoke("--plan", str(plan), "rollback", "quick", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would" in result.stderr.splitlines()[-1]
    assert "within" in result.stderr and "goes to the old system" not in result.stderr
    after = invoke("--plan", str(plan), "migrate", "status", "--json").stdout
    assert json.loads(after)["state"] == json.loads(before)["state"]  # nothing changed


def test_flags_show_no_value_placeholder_and_take_none(invoke: Invoke, tmp_path: Path) -> None:
    help_text = invoke("worker", "run", "--help").stdout
    assert "<bool>" not in help_text
    assert "--drain" in help_text
    root = invoke("--help").stdout
    assert "<bool>" not in root and "--debug" in root


def test_shell_completion_for_bash_zsh_and_fish(invoke: Invoke) -> None:
    root = invoke("--help").stdout
    assert "--install-completion" in root and "--show-completion" in root
    for shell in ("bash", "zsh", "fish"):
        result = invoke("--show-completion", shell)
        assert result.exit_code == 0, result.output
        assert "_CONSTELLATION_COMPLETE" in result.stdout, shell


def test_completion_completes_command_names() -> None:
    env = {
        **os.environ,
        "_CONSTELLATION_COMPLETE": "complete_bash",
        "COMP_WORDS": "constellation migr",
        "COMP_CWORD": "1",
    }
    result = subprocess.run(
        [CONSTELLATION], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "migrate" in result.stdout.split(), result


@pytest.mark.parametrize(
    "command",
    [
        ["demo"],
        ["verify"],
        ["worker", "run"],
        ["migrate", "phase"],
        ["migrate", "status"],
        ["rollback", "quick"],
        ["recover"],
        ["requeue"],
        ["query"],
        ["dashboard"],
    ],
)
def test_main_commands_show_examples_in_help(invoke: Invoke, command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    text = result.stdout
    assert "Examples" in text
    examples = [line.strip() for line in text.split("Examples", 1)[1].splitlines()]
    shown = [line for line in examples if line.startswith("constellation ")]
    assert shown, text
    # every example names this very command
    assert all(line.split()[1 : 1 + len(command)] == command for line in shown), shown
