"""One app being migrated, served by ``constellation serve --worker`` for the whole session.

Built once, in this process with the session's real model: a sample notes app (notes table and
the old index filled inline), provisioned, phase 1 run and passed (dual writes, every note
backfilled and embedded). Then the service starts as its own process on the embedded default
(the worker inside it holds the index), loads its own copy of the model, and every test of
this folder talks to it over HTTP. Tests that move the migration put it back as they found it
(read traffic 0, consumer enabled).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from constellation.migration.source import Note
from constellation.plan import Plan, load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.migrate.consumer import consumer
from phases.migrate.phase1 import phase1
from phases.operate.provision import provision
from tests.integration.conftest import FAST, write_plan
from tests.support.migration import sample_app
from tests.support.model import real_embedder
from tests.support.serve import TOKEN_ENV, TOKENS_SECTION, ServeProcess

#: small gates and a short state refresh, so the tests can watch the migration move
APP_SETTINGS: dict[str, Any] = {
    "migration": {
        "consistency": {"sample_size": 20},
        "traffic": {
            "min_comparisons": 3,
            "dwell": "1s",
            "state_refresh": "1s",
            "shadow_timeout": "10s",
            # the candidate's latency on a busy two-core machine is not what is tested here
            "max_p95_latency_ms": 30000,
        },
    },
    "service": TOKENS_SECTION,  # the default limits: 100 clients at once fit within them
}


@dataclass
class AppServer:
    """The served app: its plan, its notes (and whose each is), the running service."""

    plan_path: Path
    plan: Plan
    notes: list[Note]
    serve: ServeProcess

    @property
    def owner(self) -> dict[str, str]:
        return {n.id: n.user_id for n in self.notes}

    @property
    def users(self) -> list[str]:
        return sorted({n.user_id for n in self.notes})

    @contextmanager
    def migration(self) -> Iterator[Migration]:
        """The operator's side: the migration state, without taking the service's locks."""
        services = Services(self.plan, write=False)
        m = Migration(self.plan, services)
        try:
            yield m
        finally:
            m.close()
            services.close()

    def restore(self) -> None:
        """Back to the state the session started from: read traffic 0, consumer enabled."""
        with self.migration() as m:
            state = m.state.read()
            if state.read_traffic or state.traffic_step != -1:
                m.state.change("test", "restore", read_traffic=0.0, traffic_step=-1)
            if not state.consumer_enabled:
                consumer(m, True, reason="restore")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    folder = tmp_path_factory.mktemp("served-app")
    with pytest.MonkeyPatch.context() as env:
        for name, value in TOKEN_ENV.items():
            env.setenv(name, value)
        plan_path = write_plan(folder / "local.yaml", "local.yaml", FAST, APP_SETTINGS)
        plan = load_plan(plan_path)
        model = real_embedder()
        services = Services(plan, embedders=dict.fromkeys(plan.models, model))
        notes = sample_app(plan, services, notes=60, users=6)
        provision(plan, services)
        with Migration(plan, services) as m:
            report = phase1(m, wait=True)
            assert report.ok, report.gate
        services.close()
        serve = ServeProcess(plan_path, "--worker", logs=folder / "logs")
        try:
            serve.wait_ready()
            yield AppServer(plan_path, plan, notes, serve)
        finally:
            serve.stop()


@pytest.fixture
def app(app_server: AppServer) -> Iterator[AppServer]:
    """The served app, put back as the session started it after the test."""
    yield app_server
    app_server.restore()


@pytest.fixture
def serve(app: AppServer) -> ServeProcess:
    return app.serve


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the console's screenshots are, for people to look at."""
    from tests.support.browser import SCREENSHOTS

    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.exists() else []
    if shots:
        terminalreporter.write_line(f"console screenshots ({len(shots)}): {SCREENSHOTS}")
