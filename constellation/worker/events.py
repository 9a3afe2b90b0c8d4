"""What the worker reports as it goes: counters for the status line, metrics and ``stats``.

The worker calls a :class:`Recorder`; :class:`WorkerStats` keeps running totals in memory, and
the monitoring module adds a Prometheus recorder behind the same interface (see ``FanOut``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from constellation.timefields import EPOCH_SECONDS

#: outcomes of a job that ends with its message deleted
PROCESSED, SKIPPED, EMPTY = "processed", "skipped", "empty"
#: error types of failed jobs that are not validation reasons (``input_refused``: the
#: embedding provider refused the text itself; it goes to the dead-letter queue at once)
MODEL_ERROR, INDEX_ERROR, TIMEOUT, QUEUE_ERROR, INPUT_REFUSED = (
    "model_error",
    "index_error",
    "timeout",
    "queue_error",
    "input_refused",
)


@dataclass(frozen=True)
class BatchTiming:
    """One batch's sizes and durations (seconds)."""

    received: int
    embedded: int
    upserted: int
    model_seconds: float
    upsert_seconds: float
    total_seconds: float
    #: the sizes of the index upserts made for this batch: the worker's batches in flight share
    #: their writes (worker/access.py), and a shared call counts once, with the first batch in
    #: it. None: one call of ``upserted`` records.
    upsert_calls: tuple[int, ...] | None = None
    #: models loaded while this batch waited, (version, seconds): not in ``total_seconds``
    #: (a batch's time is its processing, the load is a figure of its own)
    loads: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class JobFailure:
    """One failed attempt at a job, as ``recover`` reports it (ids when the body had them)."""

    at: float = field(metadata=EPOCH_SECONDS)
    error_type: str
    detail: str
    dead_lettered: bool
    message_id: str
    receive_count: int
    user_id: str | None = None
    note_id: str | None = None
    version: int | None = None


class FailureSink(Protocol):
    """Where the worker records each failed job (``recover`` reads them back)."""

    def failed(self, failure: JobFailure) -> None: ...


class Recorder(Protocol):
    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        """A job whose message was deleted: processed, skipped (unchanged/older) or empty."""
        ...

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        """A job that failed this attempt (``dead_lettered``: it went to the DLQ for good)."""
        ...

    def job_deferred(self) -> None:
        """A job given back to the queue uncounted: the embedding provider is unavailable
        (not the job's failure)."""
        ...

    def batch_done(self, timing: BatchTiming) -> None:
        """One batch finished."""
        ...


@dataclass
class WorkerStats:
    """Running totals, safe to update from the batch threads."""

    started: float = field(default_factory=time.monotonic)
    processed: int = 0
    skipped: int = 0
    empty: int = 0
    truncated: int = 0
    batches: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    #: jobs given back to the queue while the embedding provider was unavailable
    deferred: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        with self._lock:
            if outcome == PROCESSED:
                self.processed += 1
            elif outcome == EMPTY:
                self.empty += 1
            else:
                self.skipped += 1
            self.truncated += truncated

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        with self._lock:
            self.failed[error_type] += 1
            if dead_lettered:
                self.dead_lettered[error_type] += 1

    def job_deferred(self) -> None:
        with self._lock:
            self.deferred += 1

    def batch_done(self, timing: BatchTiming) -> None:
        with self._lock:
            self.batches += 1

    @property
    def done(self) -> int:
        """Jobs whose messages were deleted after success."""
        return self.processed + self.skipped + self.empty

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def rate(self) -> float:
        """Jobs done per second since start."""
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "processed": self.processed,
                "skipped": self.skipped,
                "empty": self.empty,
                "truncated": self.truncated,
                "batches": self.batches,
                "failed": dict(self.failed),
                "dead_lettered": dict(self.dead_lettered),
                "deferred": self.deferred,
                "rate": round(self.rate(), 2),
            }


class FanOut:
    """Several recorders behind one (the in-memory stats and Prometheus, say)."""

    def __init__(self, *recorders: Recorder) -> None:
        self.recorders = recorders

    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        for r in self.recorders:
            r.job_done(outcome, latency_seconds, truncated=truncated)

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        for r in self.recorders:
            r.job_failed(error_type, dead_lettered=dead_lettered)

    def job_deferred(self) -> None:
        for r in self.recorders:
            r.job_deferred()

    def batch_done(self, timing: BatchTiming) -> None:
        for r in self.recorders:
            r.batch_done(timing)
