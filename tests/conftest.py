"""Shared fixtures: real servers and the real model are started once per test session."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.support import servers
from tests.support.cli import REPO, Invoke
from tests.support.postgres import SYSTEM_BIN, PostgresServer, pgserver_bin

# Nothing may reach the network: the model comes from site-packages, Chroma telemetry is off.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# moto accepts any credentials; the adapter still goes through boto3's standard chain.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# The ONNX exports of the session (version 1 and 2 of the shipped plans) in a folder of its own:
# each exported once per test run, whatever the machine's own cache holds; gone afterwards.
if "CONSTELLATION_MODEL_CACHE" not in os.environ:
    os.environ["CONSTELLATION_MODEL_CACHE"] = tempfile.mkdtemp(prefix="constellation-models-")
    atexit.register(shutil.rmtree, os.environ["CONSTELLATION_MODEL_CACHE"], True)


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.ManagedServer]:
    """A moto server speaking the SQS API over HTTP on a free loopback port."""
    server = servers.moto_server(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.ManagedServer]:
    """`chroma run` on a free loopback port with its own data folder."""
    base = tmp_path_factory.mktemp("chroma-server")
    server = servers.chroma_server(base / "data", base)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The machine's PostgreSQL 15 on a free loopback port (``postgres.database()`` makes a
    fresh database for a test)."""
    server = PostgresServer(SYSTEM_BIN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgvector_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL with the pgvector extension: the one the pgserver package (a test extra)
    ships, since Debian bookworm packages no pgvector."""
    folder = pgserver_bin()
    if folder is None:
        pytest.skip("no PostgreSQL with pgvector: install the test extras (pgserver)")
    server = PostgresServer(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def local_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of plans/local.yaml in an empty folder (its data folder lands beside it)."""
    monkeypatch.delenv("CONSTELLATION_DATA", raising=False)
    plan = tmp_path / "local.yaml"
    shutil.copy(REPO / "plans/local.yaml", plan)
    return plan


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Invoke:
    """Run ``constellation ARGS`` with no colour and a fixed width; returns the Result."""
    from cli.main import app

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("CONSTELLATION_PLAN", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        # A command that configures logging (worker, serve, monitor) points the constellation
        # loggers at the runner's stderr, closed once it returns: put them back as they were,
        # as a process of its own would start, so later commands do not log into it.
        loggers = [logging.getLogger(name) for name in ("constellation", "uvicorn")]
        saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
        try:
            return runner.invoke(app, list(args), input=input, catch_exceptions=False)
        finally:
            for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
                logger.handlers[:] = handlers
                logger.setLevel(level)
                logger.propagate = propagate

    return run


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run in this process get the session's loaded model for the plan's bundled
    all-MiniLM-L6-v2 (one load per test run instead of one per command)."""
    from constellation import services as services_module
    from tests.support.model import MODEL, MODEL_PACKAGE, real_embedder, real_onnx_embedder

    build = services_module.build_embedder

    def build_embedder(plan: Any, version: int, loading: Any = None) -> Any:
        model = plan.model(version)
        if (model.name, model.package) == (MODEL, MODEL_PACKAGE):
            if model.backend == "sentence-transformers":
                return real_embedder()
            if model.backend == "onnx" and model.quantize is None:
                return real_onnx_embedder()
        return build(plan, version, loading)

    monkeypatch.setattr(services_module, "build_embedder", build_embedder)
