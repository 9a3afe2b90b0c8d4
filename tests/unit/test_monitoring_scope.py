"""Figures scoped to the deployment: a queue or index made anew is a new deployment, and
`read_stats` counts only the current one (real SQLite queues, fake model, in-memory index)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from constellation.errors import QueueError
from constellation.monitoring.deployment import identify
from constellation.monitoring.stats import read_stats
from constellation.monitoring.store import MetricsStore
from constellation.queues.port import QueueSpec, Redrive
from constellation.wiring.worker import run_worker
from tests.fakes import MemoryIndex
from tests.support.monitoring import StubServices, StubStore, open_stub, send_mix, write_plan


class Enabled:
    def consumer_enabled(self) -> bool:
        return True


def fresh_systems(services: StubServices) -> None:
    """What new servers look like: the queues and the index created again, empty."""
    plan = services.plan
    broker = services.broker
    for name in (plan.queue.name, plan.queue.dead_letter):
        broker.delete_queue(name)
    broker.create(QueueSpec(plan.queue.dead_letter, 30))
    broker.create(QueueSpec(plan.queue.name, 30, Redrive(plan.queue.dead_letter, 4)))
    services.queue = broker.open(plan.queue.name)
    services.dead_letter = broker.open(plan.queue.dead_letter)
    services.store = StubStore()
    services.memory_index = MemoryIndex()


def test_a_second_deployment_counts_only_its_own_jobs(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 12, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    first = read_stats(plan, services)  # type: ignore[arg-type]
    assert first.jobs.processed == 12
    assert first.scope is not None and first.scope.deployment is not None

    fresh_systems(services)
    send_mix(services.queue, 5, {"not_json": "{oops"})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    second = read_stats(plan, services)  # type: ignore[arg-type]
    # the metrics file holds both runs; the figures count the second only
    assert (second.jobs.processed, second.jobs.failed) == (5, 1)
    assert second.window.jobs == 6
    assert second.scope is not None and second.scope.deployment is not None
    assert second.scope.deployment.key != first.scope.deployment.key
    assert first.scope.since is not None and second.scope.since is not None
    assert second.scope.since > first.scope.since
    assert f"deployment {second.scope.deployment.key}" in second.source
    store = MetricsStore(plan.metrics_path)
    assert len(store.instances(plan.name, plan.environment)) == 2
    assert [d.deployment.key for d in store.deployments(plan.name, plan.environment)] == [
        first.scope.deployment.key,
        second.scope.deployment.key,
    ]


def test_the_same_queue_with_an_unreadable_index_is_still_the_same_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 3, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]

    def down(name: str) -> None:
        raise QueueError("index server unreachable")

    monkeypatch.setattr(services.store, "inspect", down)
    assert identify(plan, services) is not None
    assert read_stats(plan, services).jobs.processed == 3  # type: ignore[arg-type]


def test_an_unreachable_queue_shows_the_last_deployment_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 4, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    fresh_systems(services)
    send_mix(services.queue, 2, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]

    def down(name: str) -> None:
        raise QueueError("SQS endpoint unreachable")

    monkeypatch.setattr(services.broker, "inspect", down)
    stats = read_stats(plan, services)  # type: ignore[arg-type]
    assert stats.jobs.processed == 2
    assert any("cannot be inspected now" in note for note in stats.notes)


def test_runs_recorded_before_deployments_were_are_not_counted(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    plan.metrics_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(plan.metrics_path) as db:  # the file as an older version wrote it
        db.executescript(
            "CREATE TABLE instances (instance TEXT PRIMARY KEY, plan TEXT NOT NULL, "
            "environment TEXT NOT NULL, role TEXT NOT NULL, host TEXT NOT NULL, "
            "pid INTEGER NOT NULL, started REAL NOT NULL, last REAL NOT NULL, ended REAL);"
            "CREATE TABLE snapshots (instance TEXT NOT NULL, at REAL NOT NULL, "
            "samples TEXT NOT NULL, PRIMARY KEY (instance, at));"
            "INSERT INTO instances VALUES ('old', 'notes', 'test', 'worker', 'h', 1, 1, 2, 2);"
            "INSERT INTO snapshots VALUES ('old', 2, "
            "'{\"constellation_jobs_processed_total\": [[{}, 870.0]]}');"
        )
    send_mix(services.queue, 3, {})
    run_worker(plan, services, Enabled(), drain=True)  # type: ignore[arg-type]
    assert read_stats(plan, services).jobs.processed == 3  # type: ignore[arg-type]
    old = MetricsStore(plan.metrics_path).instances(plan.name, plan.environment)[0]
    assert (old.id, old.deployment) == ("old", None)
