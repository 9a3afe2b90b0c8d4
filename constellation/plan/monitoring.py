"""Plan section of monitoring: alert rules (with the operators' defaults) and notifications."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from constellation.plan.fields import Duration, OptSecret, OptStr, PlanPath, Section

Metric = Literal[
    "queue_depth",
    "dead_letter_depth",
    "error_rate",
    "processing_p95_ms",
    "query_p95_ms",
    "provider_unavailable",
]
#: where an alert's changes go: the Slack-compatible webhook, PagerDuty, email, the command
Channel = Literal["webhook", "pagerduty", "email", "command"]


class AlertRule(Section):
    name: str
    metric: Metric
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    #: how long the condition must hold before the alert fires (Prometheus ``for``)
    for_: Duration = Field(0.0, alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""
    #: the channels this rule's changes go to (default: every channel the plan configures)
    channels: list[Channel] | None = None

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
        summary="p95 batch processing time (full batch to stored) above 2000 ms for 10 minutes",
    ),
    AlertRule(
        name="EmbeddingProviderUnavailable",
        metric="provider_unavailable",
        threshold=0,
        for_=60,
        severity="critical",
        summary="provider unavailable for a minute: workers wait, jobs stay queued",
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


class PagerDutyConfig(Section):
    """PagerDuty's Events API v2: a trigger when an alert fires, a resolve when it clears."""

    #: the integration's routing key (from the environment: ``${PAGERDUTY_ROUTING_KEY}``)
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"
    #: the event's ``source``: where the alert comes from (default: the plan and environment)
    source: OptStr = None

    @field_validator("routing_key")
    @classmethod
    def _set(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():
            raise ValueError("empty: set the variable the plan reads it from")
        return key


class EmailConfig(Section):
    """Alerts by email over SMTP; credentials from the environment."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    #: ``starttls`` (587: plain, then TLS before anything is said), ``tls`` (465: TLS from
    #: the start), or ``none`` (a relay on this machine only)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: OptSecret = None
    password: OptSecret = None
    sender: str
    to: list[str] = Field(min_length=1)
    #: a CA bundle to trust besides the system's (a private CA)
    ca_file: PlanPath | None = None

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.security == "none" and self.password is not None:
            raise ValueError("a password is never sent without TLS: use security starttls or tls")
        return self


class MonitoringConfig(Section):
    #: ask Prometheus's HTTP API instead of the local snapshot file
    prometheus_url: OptStr = None
    #: how often the worker records a snapshot of its metrics in <data_dir>/metrics.db
    snapshot_interval: Duration = 10.0
    #: the window over which stats and alerts compute rates and percentiles
    window: Duration = 300.0
    alerts: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    #: a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, ...)
    webhook_url: OptSecret = None
    on_change_command: OptStr = None
    pagerduty: PagerDutyConfig | None = None
    email: EmailConfig | None = None

    def channels(self) -> list[Channel]:
        """The channels this plan configures."""
        configured: list[tuple[Channel, object]] = [
            ("webhook", self.webhook_url),
            ("pagerduty", self.pagerduty),
            ("email", self.email),
            ("command", self.on_change_command),
        ]
        return [name for name, setting in configured if setting is not None]

    @model_validator(mode="after")
    def _known_channels(self) -> MonitoringConfig:
        configured = set(self.channels())
        for i, rule in enumerate(self.alerts):
            missing = [c for c in rule.channels or () if c not in configured]
            if missing:
                have = ", ".join(sorted(configured)) or "none"
                raise ValueError(
                    f"alerts[{i}] ({rule.name}): channel(s) {', '.join(missing)} not configured "
                    f"in monitoring (configured: {have})"
                )
        return self
