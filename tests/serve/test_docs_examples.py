"""The HTTP guide's curl examples run as written (issue 23): against ``serve --worker`` on the
embedded default plan, with the tokens the guide tells the reader to export; the note sent to
``/embed`` is then found by ``/query``, as the guide says it will be."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.cli import REPO
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.model

WRITE = "docs-write-token-0123456789abcdef"
READ = "docs-read-token-0123456789abcdef"


def _curl_block() -> str:
    """The guide's ``sh`` block of curl commands (the deployment check)."""
    text = (REPO / "docs/http.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if "curl" in b]
    return block


def _documents(text: str) -> list[object]:
    """The JSON documents curl printed one after another (without newlines between)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def _ready(serve: ServeProcess) -> bool:
    try:
        return serve.call("GET", "/readyz", token=READ).status == 200
    except httpx.TransportError:
        return False  # not listening yet


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeProcess]:
    plan = yaml.safe_load((REPO / "plans/local.yaml").read_text())
    plan["data_dir"] = "./data"
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    env = {"CONSTELLATION_TOKEN": WRITE, "CONSTELLATION_READ_TOKEN": READ}
    serve = ServeProcess(path, "--worker", logs=tmp_path / "logs", env=env)
    try:
        deadline = time.monotonic() + 180
        while not _ready(serve):
            assert time.monotonic() < deadline, serve.tail()
            assert serve.process.poll() is None, serve.tail()
            time.sleep(0.5)
        yield serve
    finally:
        serve.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples_run_as_written_with_their_tokens(served: ServeProcess) -> None:
    block = _curl_block()
    assert block.count("Authorization: Bearer $CONSTELLATION") == block.count("curl ")
    script = block.replace("http://127.0.0.1:8080", served.url)
    env = {**os.environ, "CONSTELLATION_TOKEN": WRITE, "CONSTELLATION_READ_TOKEN": READ}
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    answers = _documents(ran.stdout)
    stats, embedded, queried = answers
    assert isinstance(stats, dict) and isinstance(embedded, dict) and isinstance(queried, dict)
    assert "queue" in stats and "at" in stats  # the figures, not a 401
    assert embedded["accepted"] == 1
    found = [r["noteId"] for r in queried["results"]]
    # the guide's wait is enough on a quiet machine; a busy one may need a little longer
    deadline = time.monotonic() + 60
    while "test-note" not in found and time.monotonic() < deadline:
        time.sleep(0.5)
        again = served.call(
            "POST", "/query", {"userId": "test", "text": "test embedding"}, token=READ
        )
        found = [r["noteId"] for r in again.body["results"]]
    assert found == ["test-note"]


def test_without_a_token_the_examples_would_be_refused(served: ServeProcess) -> None:
    """What the guide's headers are for: the same call without one is a 401."""
    assert served.call("GET", "/stats", token=None).status == 401
    assert served.call("GET", "/stats", token=READ).status == 200
