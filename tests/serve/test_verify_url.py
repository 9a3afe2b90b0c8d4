"""``constellation verify --url``: the deployment checks against the running service, through
the CLI, over HTTP only."""

from __future__ import annotations

import json

import pytest

from phases.operate.verify_roundtrip import VERIFY_TEXT, VERIFY_USER
from tests.serve.conftest import AppServer
from tests.support.cli import Invoke
from tests.support.serve import READ_TOKEN, WRITE_TOKEN
from tests.support.servers import free_port

pytestmark = [pytest.mark.model]


def checks(output: str) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in json.loads(output)["checks"]}


def test_verify_url_makes_a_round_trip_and_cleans_up(app_server: AppServer, invoke: Invoke) -> None:
    url = app_server.serve.url
    result = invoke("verify", "--url", url, "--token", WRITE_TOKEN, "--json")
    assert result.exit_code == 0, result.output
    assert checks(result.stdout) == {
        "service answers": True,
        "stats answer": True,
        "ready": True,
        "test job accepted": True,
        "found by /query": True,
        "test note removed": True,
    }
    assert WRITE_TOKEN not in result.output
    left = app_server.serve.call("POST", "/query", {"text": VERIFY_TEXT, "userId": VERIFY_USER})
    assert left.body == {"results": []}


def test_verify_url_names_what_fails(
    app_server: AppServer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSTELLATION_TOKEN", raising=False)
    url = app_server.serve.url
    read_only = invoke("verify", "--url", url, "--token", READ_TOKEN, "--json")
    assert read_only.exit_code == 1
    found = checks(read_only.stdout)
    assert found["stats answer"] and found["ready"] and not found["test job accepted"]
    assert "needs write" in read_only.stdout
    no_token = invoke("verify", "--url", url, "--json")
    assert no_token.exit_code == 1
    assert checks(no_token.stdout) == {"service answers": True, "token accepted": False}
    assert "give --token (or CONSTELLATION_TOKEN)" in no_token.stdout
    nobody = invoke("verify", "--url", f"http://127.0.0.1:{free_port()}", "--json")
    assert nobody.exit_code == 1
    assert checks(nobody.stdout) == {"service answers": False}
