"""The worker's settings (from the plan's ``consumer`` and ``queue``) and what it reports: the
status line while it runs and the summary of a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from constellation.queues.port import QueueDepth


@dataclass(frozen=True)
class WorkerSettings:
    max_batch_size: int = 20
    max_batch_timeout: float = 30.0
    max_concurrency: int = 10
    #: long-poll wait of one receive call
    wait_time: float = 5.0
    visibility_timeout: float = 60.0
    #: how often an idle, disabled or draining worker looks again
    poll_interval: float = 1.0


@dataclass(frozen=True)
class WorkerStatus:
    """What the status line shows."""

    stats: dict[str, object]
    in_flight_batches: int
    held_messages: int
    queue_depth: QueueDepth | None
    consumer_enabled: bool
    #: why receiving is paused: an embedding provider is unavailable (None: it is not)
    outage: str | None = None


@dataclass
class RunSummary:
    received: int = 0
    batches: int = 0
    #: why the run ended: "drained", "max-messages", "stopped", "consumer disabled"
    reason: str = ""
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Failed attempts in this run."""
        failed = self.stats.get("failed")
        return sum(failed.values()) if isinstance(failed, dict) else 0

    @property
    def all_failed(self) -> bool:
        """Jobs failed and none ended well (stored, skipped or emptied): a run that did nothing
        but fail, which ``worker run`` reports with a non-zero exit code."""
        counts = (self.stats.get(k) for k in ("processed", "skipped", "empty"))
        done = sum(n for n in counts if isinstance(n, int))
        return self.failed > 0 and done == 0
