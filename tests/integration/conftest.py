"""What the integration tests share: one loaded model, test plans, provisioning, worker processes.

The real model is loaded once per test session (:func:`real_embedder`) and handed to in-process
workers through :class:`ModelServices`; worker *processes* load their own, as in production.
Test plans are copies of the repository's plans with a few settings changed (short visibility
timeouts, small batches), written into the test's own folder.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.jobs import Job
from constellation.plan import Plan, load_plan
from constellation.queues.port import Message, Outgoing, Queue
from constellation.services import Services
from phases.operate.provision import CheckModel, provision_steps
from phases.steps import run_steps
from tests.support.cli import REPO
from tests.support.fault_proxy import FaultProxy
from tests.support.infinity import API_KEY, SERVED_MODEL, infinity_server
from tests.support.model import real_embedder
from tests.support.servers import ManagedServer

# the worker fault tests' shared checks live in a plain module: rewrite its asserts too
pytest.register_assert_rewrite("tests.integration.faults_support")

#: the installed console script, beside this interpreter
CONSTELLATION = str(Path(sys.executable).parent / "constellation")

#: settings that keep a test quick: short visibility timeouts and batch windows, small batches
FAST: dict[str, Any] = {
    "queue": {"visibility_timeout": 2, "wait_time": 1},
    "consumer": {
        "max_batch_size": 8,
        "max_batch_timeout": "0.2s",
        "max_concurrency": 2,
        "poll_interval": "0.1s",
    },
}


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return real_embedder()


@pytest.fixture(scope="session")
def infinity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    """Infinity serving the bundled all-MiniLM-L6-v2 under /v1 on a free loopback port, once
    per session (skipped, or failed in CI, when its virtualenv is missing)."""
    server = infinity_server(tmp_path_factory.mktemp("infinity"))
    server.start(timeout=240)  # torch's first import on a busy 2-core machine is slow
    yield server
    server.stop()


@pytest.fixture
def fault_proxy(infinity: ManagedServer) -> Iterator[FaultProxy]:
    """Our fault proxy in front of Infinity, for one test."""
    proxy = FaultProxy(infinity.url)
    yield proxy
    proxy.close()


def provider_model(url: str, **provider: Any) -> dict[str, Any]:
    """Plan overrides: model version 3 is all-MiniLM-L6-v2 through the provider at ``url``
    (its ``/v1`` base), the default version; its key comes from $INFINITY_TEST_KEY."""
    settings = {
        "url": f"{url}/v1",
        "model": SERVED_MODEL,
        "api_key": "${INFINITY_TEST_KEY}",
        "backoff": "0.2s",
        "max_backoff": "2s",
        "probe_interval": "1s",
        **provider,
    }
    model = {"name": "all-MiniLM-L6-v2-infinity", "backend": "http", "dimensions": 384}
    return {"models": {3: {**model, "provider": settings}}, "default_version": 3}


@pytest.fixture
def infinity_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """$INFINITY_TEST_KEY set to the key Infinity demands (for plans, here and in workers)."""
    monkeypatch.setenv("INFINITY_TEST_KEY", API_KEY)
    return API_KEY


class ModelServices(Services):
    """The plan's real adapters, but every model version is the given (already-loaded) model."""

    def __init__(self, plan: Plan, model: Any, *, write: bool = True) -> None:
        super().__init__(plan, write=write, embedders=dict.fromkeys(plan.models, model))


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_plan(path: Path, base: str, *overrides: dict[str, Any]) -> Path:
    """``plans/<base>`` with ``overrides`` deep-merged in, written to ``path``.

    ``${VAR}`` references survive (they are plain strings to YAML); the data folder is always
    the plan's own folder, whatever CONSTELLATION_DATA says.
    """
    data = yaml.safe_load((REPO / "plans" / base).read_text())
    data.pop("environments", None)
    for override in ({"data_dir": "./data"}, *overrides):
        data = merged(data, override)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def unique_names() -> dict[str, Any]:
    """Queue and index names no other test uses (the moto and Chroma servers are shared)."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "queue": {"name": f"embed-queue-{suffix}", "dead_letter": f"embed-dead-letter-{suffix}"},
        "index": {"name": f"dome-notes-{suffix}"},
    }


def provision_plan(path: Path) -> Plan:
    """Create the plan's queues and index (the model check is left to the tests that load it)."""
    plan = load_plan(path)
    with Services(plan) as services:
        steps = [s for s in provision_steps(plan, services) if not isinstance(s, CheckModel)]
        outcomes = {r.outcome for r in run_steps(steps)}
    assert outcomes <= {"created", "unchanged"}, outcomes
    return plan


@pytest.fixture
def servers_env(
    moto: ManagedServer, chroma_server: ManagedServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """SQS_ENDPOINT_URL and CHROMA_URL for plans/staging.yaml, here and in worker processes."""
    env = {"SQS_ENDPOINT_URL": moto.url, "CHROMA_URL": chroma_server.url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@dataclass
class Backend:
    """Where the queue and index of a test live: ``embedded`` or ``sqs`` (moto + Chroma server)."""

    kind: str
    folder: Path

    def plan(self, *overrides: dict[str, Any]) -> Path:
        if self.kind == "embedded":
            return write_plan(self.folder / "local.yaml", "local.yaml", FAST, *overrides)
        return write_plan(
            self.folder / "staging.yaml", "staging.yaml", unique_names(), FAST, *overrides
        )


@pytest.fixture(params=["embedded", "sqs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqs":
        request.getfixturevalue("servers_env")
    return Backend(request.param, tmp_path)


def job_body(user: str, note: str, text: str, created: int = 1_700_000_000_000) -> str:
    return Job(user, note, text, created, 1).to_body()


def send(queue: Queue, bodies: list[str]) -> None:
    result = queue.send_batch([Outgoing(body) for body in bodies])
    assert result.ok, result.failed


def receive_all(queue: Queue) -> list[Message]:
    """Every visible message of ``queue``, hidden for a minute so none is read twice."""
    found: list[Message] = []
    while batch := queue.receive(max_messages=10, visibility_timeout=60):
        found += batch
    return found


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(interval)


class WorkerProcess:
    """``constellation --plan PLAN worker run ARGS`` as a separate process, as operators run it."""

    def __init__(self, plan: Path, *args: str, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        name = f"worker-{uuid.uuid4().hex[:6]}"
        self.stdout_path = logs / f"{name}.out"
        self.stderr_path = logs / f"{name}.err"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [CONSTELLATION, "--plan", str(plan), "worker", "run", *args],
                stdout=out,
                stderr=err,
                env=env,
            )

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"worker still running after {timeout}s:\n{self.stderr[-3000:]}"
            ) from None

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def summary(self) -> dict[str, Any]:
        """The ``--json`` summary the worker printed when it ended."""
        text = self.stdout_path.read_text()
        assert text.strip(), f"worker printed no summary; stderr:\n{self.stderr[-3000:]}"
        data: dict[str, Any] = json.loads(text)
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes; any still running when the test ends is killed."""
    started: list[WorkerProcess] = []

    def start(plan: Path, *args: str) -> WorkerProcess:
        worker = WorkerProcess(plan, *args, logs=tmp_path / "logs")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
