"""Plan section of monitoring: alert rules (with the operators' defaults) and notifications."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from constellation.plan.fields import Duration, OptSecret, OptStr, Section

Metric = Literal[
    "queue_depth", "dead_letter_depth", "error_rate", "processing_p95_ms", "query_p95_ms"
]


class AlertRule(Section):
    name: str
    metric: Metric
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    #: how long the condition must hold before the alert fires (Prometheus ``for``)
    for_: Duration = Field(0.0, alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


DEFAULT_ALERTS = [
    AlertRule(
        name="EmbedQueueBacklog",
        metric="queue_depth",
        threshold=1000,
        for_=900,
        summary="embed queue deeper than 1000 for 15 minutes",
    ),
    AlertRule(
        name="EmbedErrorRate",
        metric="error_rate",
        threshold=0.05,
        for_=300,
        severity="critical",
        summary="more than 5% of jobs failing for 5 minutes",
    ),
    AlertRule(
        name="EmbedSlowProcessing",
        metric="processing_p95_ms",
        threshold=2000,
        for_=600,
        summary="p95 processing time above 2000 ms for 10 minutes",
    ),
    AlertRule(
        name="EmbedDeadLetters",
        metric="dead_letter_depth",
        threshold=0,
        for_=0,
        severity="critical",
        summary="messages in the dead-letter queue",
    ),
]


class MonitoringConfig(Section):
    #: ask Prometheus's HTTP API instead of the local snapshot file
    prometheus_url: OptStr = None
    #: how often the worker records a snapshot of its metrics in <data_dir>/metrics.db
    snapshot_interval: Duration = 10.0
    #: the window over which stats and alerts compute rates and percentiles
    window: Duration = 300.0
    alerts: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    webhook_url: OptSecret = None
    on_change_command: OptStr = None
