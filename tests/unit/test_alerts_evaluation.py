"""Alert rules with durations, on an injected clock; states persisted in the metrics file."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.monitoring.alerts import AlertEvaluator, condition
from constellation.monitoring.notify import Notifier
from constellation.monitoring.rounds import check_alerts, watch_alerts
from constellation.monitoring.store import MetricsStore
from constellation.plan import DEFAULT_ALERTS, AlertRule
from tests.support.monitoring import open_stub, send_mix, write_plan

BACKLOG = AlertRule(name="Backlog", metric="queue_depth", threshold=1000, for_=900)
DEAD = AlertRule(name="DeadLetters", metric="dead_letter_depth", threshold=0, for_=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> MetricsStore:
    return MetricsStore(tmp_path / "metrics.db")


def evaluator(store: MetricsStore, clock: Clock, *rules: AlertRule) -> AlertEvaluator:
    return AlertEvaluator(rules or (BACKLOG, DEAD), store, scope=("notes", "test"), clock=clock)


def states(ev: AlertEvaluator, **values: float | None) -> dict[str, str]:
    return {s.name: s.state for s in ev.evaluate(values).statuses}


def test_a_condition_shorter_than_its_duration_stays_pending(store: MetricsStore) -> None:
    clock = Clock()
    ev = evaluator(store, clock, BACKLOG)
    assert states(ev, queue_depth=5000) == {"Backlog": "pending"}
    clock.now += 899
    assert states(ev, queue_depth=5000) == {"Backlog": "pending"}
    clock.now += 60
    result = ev.evaluate({"queue_depth": 10})
    assert [s.state for s in result.statuses] == ["ok"]
    (change,) = result.changes
    assert (change.previous, change.state, change.resolved) == ("pending", "ok", False)
    # Holding again starts the duration afresh.
    clock.now += 60
    assert states(ev, queue_depth=5000) == {"Backlog": "pending"}
    clock.now += 899
    assert states(ev, queue_depth=5000) == {"Backlog": "pending"}


def test_a_condition_longer_than_its_duration_fires_then_resolves(store: MetricsStore) -> None:
    clock = Clock()
    ev = evaluator(store, clock, BACKLOG)
    started = clock.now
    first = ev.evaluate({"queue_depth": 1001})
    assert [(c.previous, c.state) for c in first.changes] == [("ok", "pending")]
    clock.now += 900
    fired = ev.evaluate({"queue_depth": 1500})
    (status,) = fired.statuses
    assert (status.state, status.active_since, status.value) == ("firing", started, 1500)
    assert [(c.previous, c.state) for c in fired.changes] == [("pending", "firing")]
    clock.now += 30
    assert ev.evaluate({"queue_depth": 2000}).changes == []  # still firing: no new change
    clock.now += 30
    recovered = ev.evaluate({"queue_depth": 999})
    (change,) = recovered.changes
    assert change.resolved and recovered.statuses[0].active_since is None


def test_the_dead_letter_rule_fires_at_once(store: MetricsStore) -> None:
    clock = Clock()
    ev = evaluator(store, clock)
    result = ev.evaluate({"queue_depth": 0, "dead_letter_depth": 1})
    assert {s.name: s.state for s in result.statuses} == {"Backlog": "ok", "DeadLetters": "firing"}
    assert [(c.rule.name, c.previous, c.state) for c in result.changes] == [
        ("DeadLetters", "ok", "firing")
    ]
    assert [s.name for s in result.firing] == ["DeadLetters"]


def test_state_survives_across_evaluator_instances(store: MetricsStore) -> None:
    clock = Clock()
    assert states(evaluator(store, clock), queue_depth=3000, dead_letter_depth=0) == {
        "Backlog": "pending",
        "DeadLetters": "ok",
    }
    clock.now += 1000  # e.g. the next `monitor --once` from cron
    later = evaluator(store, clock).evaluate({"queue_depth": 3000, "dead_letter_depth": 0})
    assert [(c.rule.name, c.previous, c.state) for c in later.changes] == [
        ("Backlog", "pending", "firing")
    ]
    # Another plan/environment in the same file has its own states.
    other = AlertEvaluator([BACKLOG], store, scope=("notes", "prod"), clock=clock)
    assert states(other, queue_depth=3000) == {"Backlog": "pending"}


def test_no_data_does_not_hold(store: MetricsStore) -> None:
    ev = evaluator(
        store, Clock(), AlertRule(name="Slow", metric="processing_p95_ms", threshold=2000)
    )
    assert states(ev, processing_p95_ms=None) == {"Slow": "ok"}
    assert states(ev, processing_p95_ms=2500) == {"Slow": "firing"}


def test_without_a_store_state_is_kept_in_memory() -> None:
    clock = Clock()
    ev = AlertEvaluator([BACKLOG], clock=clock)
    assert states(ev, queue_depth=2000) == {"Backlog": "pending"}
    clock.now += 900
    assert states(ev, queue_depth=2000) == {"Backlog": "firing"}


def test_the_default_rules_read_as_the_issue_states() -> None:
    assert [condition(r) for r in DEFAULT_ALERTS] == [
        "queue_depth > 1000 for 15m",
        "error_rate > 0.05 for 5m",
        "processing_p95_ms > 2000 for 10m",
        "provider_unavailable > 0 for 1m",
        "dead_letter_depth > 0",
    ]


def test_check_alerts_reads_the_service_and_watch_repeats(tmp_path: Path) -> None:
    plan, services = open_stub(write_plan(tmp_path))
    send_mix(services.queue, 0)
    services.dead_letter.send("a job that failed for good")
    now = 1_700_000_000.0
    first = check_alerts(plan, services, now=now, notifier=Notifier())  # type: ignore[arg-type]
    states = {s.name: (s.state, s.value) for s in first.statuses}
    assert states["EmbedDeadLetters"] == ("firing", 1)
    assert states["EmbedQueueBacklog"] == ("ok", 3)  # the three malformed jobs wait
    assert states["EmbedErrorRate"] == ("ok", None)  # no worker has recorded anything

    reports: list[object] = []
    sleeps: list[float] = []
    watch_alerts(
        plan,
        services,  # type: ignore[arg-type]
        interval=7,
        on_report=reports.append,
        rounds=2,
        sleep=sleeps.append,
    )
    assert len(reports) == 2 and sleeps == [7]
