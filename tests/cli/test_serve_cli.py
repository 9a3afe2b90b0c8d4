"""``constellation serve`` refusals through the CLI, and the plan's ``service`` section."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.support.cli import Invoke

TOKEN = "s3cret-token-value-0123456789"


def test_serve_refuses_beyond_loopback_without_tokens(invoke: Invoke, local_plan: Path) -> None:
    result = invoke("--plan", str(local_plan), "serve", "--host", "0.0.0.0", "--worker")
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "error: refusing to serve on 0.0.0.0: the plan has no tokens (tokens app, dashboards "
        "have no value: set their variables); add service.tokens to the plan (values from the "
        "environment), or serve on 127.0.0.1"
    )
    assert not (local_plan.parent / "data").exists()  # refused before anything was created


def test_serve_on_a_busy_port_says_so(invoke: Invoke, local_plan: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("--plan", str(local_plan), "serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "choose another --port (0 picks a free one)" in result.stderr


def test_plan_validate_masks_service_tokens(
    invoke: Invoke, local_plan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSTELLATION_TOKEN", TOKEN)
    result = invoke("--plan", str(local_plan), "plan", "validate", "--json")
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.stdout)["service"]["tokens"]
    assert tokens == [
        {"name": "app", "token": "**********", "scope": "write"},
        {"name": "dashboards", "token": None, "scope": "read"},
    ]
    assert TOKEN not in result.output


def test_a_short_or_repeated_token_is_refused_without_showing_it(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("service:\n  tokens:\n    - {name: app, token: hunter2, scope: write}\n")
    result = invoke("--plan", str(plan), "plan", "validate")
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert f"{plan}:3: service.tokens.0: token 'app' is shorter than 16 characters" in result.stderr
    plan.write_text(
        "service:\n  tokens:\n"
        f"    - {{name: a, token: {TOKEN}}}\n"
        f"    - {{name: a, token: {TOKEN}x}}\n"
        f"    - {{name: b, token: {TOKEN}}}\n"
    )
    repeated = invoke("--plan", str(plan), "plan", "validate")
    assert repeated.exit_code == 2
    assert TOKEN not in repeated.output
    assert f"{plan}:1: service: token names must differ: a repeated" in repeated.stderr
