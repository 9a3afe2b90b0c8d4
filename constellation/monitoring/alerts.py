"""Alert rules with durations, as Prometheus evaluates them.

A rule whose condition holds becomes **pending**; once the condition has held for the rule's
``for`` duration it is **firing** (at once when ``for`` is 0); when the condition stops holding
the alert is **ok** again (resolved, if it was firing). A metric with no value (nothing observed
in the window) does not hold. States live in the metrics file, so ``monitor --once`` run from
cron honours durations across runs; the clock is injected for tests. A monitoring round (read
the figures, evaluate, notify) is :mod:`constellation.monitoring.rounds`.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from constellation.monitoring.queries import format_duration
from constellation.monitoring.store import MetricsStore, StoredAlert
from constellation.plan import AlertRule
from constellation.timefields import EPOCH_SECONDS

State = Literal["ok", "pending", "firing"]
_STATES: tuple[State, ...] = ("ok", "pending", "firing")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def condition(rule: AlertRule) -> str:
    """``dead_letter_depth > 0``, ``queue_depth > 1000 for 15m``."""
    text = f"{rule.metric} {rule.op} {rule.threshold:g}"
    return f"{text} for {format_duration(rule.for_)}" if rule.for_ else text


@dataclass(frozen=True)
class AlertStatus:
    """One rule after an evaluation."""

    rule: AlertRule
    state: State
    value: float | None
    #: since when the condition has held (None while ok)
    active_since: float | None = field(metadata=EPOCH_SECONDS)
    changed_at: float | None = field(metadata=EPOCH_SECONDS)

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True)
class AlertChange:
    """A rule that changed state in this evaluation."""

    rule: AlertRule
    previous: State
    state: State
    value: float | None
    at: float = field(metadata=EPOCH_SECONDS)

    @property
    def resolved(self) -> bool:
        return self.previous == "firing" and self.state == "ok"


@dataclass(frozen=True)
class Evaluation:
    at: float = field(metadata=EPOCH_SECONDS)
    statuses: list[AlertStatus]
    changes: list[AlertChange]

    @property
    def firing(self) -> list[AlertStatus]:
        return [s for s in self.statuses if s.state == "firing"]


class AlertEvaluator:
    """Evaluates ``rules`` against metric values, keeping their states in ``store``."""

    def __init__(
        self,
        rules: Sequence[AlertRule],
        store: MetricsStore | None = None,
        *,
        scope: tuple[str, str] = ("", ""),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = list(rules)
        self.store = store
        self.scope = scope
        self.clock = clock
        self._memory: dict[str, StoredAlert] = {}

    def _load(self) -> dict[str, StoredAlert]:
        return (
            self.store.alert_states(*self.scope) if self.store is not None else dict(self._memory)
        )

    def evaluate(self, values: Mapping[str, float | None], now: float | None = None) -> Evaluation:
        at = self.clock() if now is None else now
        stored = self._load()
        statuses: list[AlertStatus] = []
        changes: list[AlertChange] = []
        saved: dict[str, StoredAlert] = {}
        for rule in self.rules:
            before = stored.get(rule.name, StoredAlert("ok", None, None, None))
            previous: State = next((s for s in _STATES if s == before.state), "ok")
            value = values.get(rule.metric)
            held = value is not None and _OPS[rule.op](value, rule.threshold)
            since: float | None = None
            state: State = "ok"
            if held:
                since = before.active_since if previous != "ok" and before.active_since else at
                state = "firing" if at - since >= rule.for_ else "pending"
            changed_at = at if state != previous else before.changed_at
            if state != previous:
                changes.append(AlertChange(rule, previous, state, value, at))
            statuses.append(AlertStatus(rule, state, value, since, changed_at))
            saved[rule.name] = StoredAlert(state, since, changed_at, value)
        if self.store is not None:
            self.store.save_alert_states(*self.scope, saved, at)
        else:
            self._memory = saved
        return Evaluation(at, statuses, changes)
