"""What a batch carries between :meth:`~.process.BatchProcessor.start` and
:meth:`~.process.BatchProcessor.finish`: each model version's outcome, the records handed over to
be stored, and the small rules the processor applies to each job on the way (the newest edit of
a record in a batch, a usable vector, which index error it was)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from constellation.queues.port import Message
from constellation.worker.events import INDEX_ERROR, TIMEOUT
from constellation.worker.outcomes import BatchOutcome, Failure, Pending
from constellation.worker.write_behind import Written


@dataclass(frozen=True)
class Refused:
    """A text the provider refused, with its reason (its job goes to the dead-letter queue)."""

    reason: str


#: one job after the model: its vector, or why it has none
Embedded = tuple[Pending, np.ndarray | None, str | Refused | None]


@dataclass
class Started:
    """A batch handed over to be stored: what :meth:`BatchProcessor.finish` acknowledges."""

    messages: Sequence[Message]
    at: float
    result: BatchOutcome = field(default_factory=BatchOutcome)
    versions: list[VersionOutcome] = field(default_factory=list)

    @property
    def stored(self) -> list[Future[Written]]:
        """What to wait for before :meth:`BatchProcessor.finish`."""
        return [v.written for v in self.versions if v.written is not None]


@dataclass
class VersionOutcome:
    done: list[tuple[Pending, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    #: jobs given back to the queue (the provider is unavailable)
    deferred: list[Pending] = field(default_factory=list)
    model_seconds: float = 0.0
    embedded: int = 0
    #: the jobs handed over to be stored, and when; ``written`` completes once they are
    writing: list[Pending] = field(default_factory=list)
    handed_at: float = 0.0
    written: Future[Written] | None = None
    #: its model version, and the seconds waited for the model's first load (not timed)
    version: int = 0
    load_seconds: float = 0.0

    def fail(self, items: list[Pending], error_type: str, detail: str) -> None:
        self.failures += [Failure(item, error_type, detail) for item in items]


def add_newest(pending: dict[str, Pending], item: Pending) -> None:
    """Keep one job per record id in a batch: the newest edit (the later one on a tie)."""
    current = pending.get(item.id)
    if current is None:
        pending[item.id] = item
    elif item.job.created >= current.job.created:
        item.duplicates = [*current.duplicates, current.message]
        pending[item.id] = item
    else:
        current.duplicates.append(item.message)


def checked(item: Pending, row: np.ndarray, dimension: int) -> Embedded:
    """The job with its vector, or with why the model's row is unusable."""
    if row.shape != (dimension,) or not np.all(np.isfinite(row)):
        return item, None, f"model returned an unusable vector (shape {row.shape})"
    return item, row, None


def index_error_type(exc: BaseException) -> str:
    """A timeout anywhere in the error's causes, else an index error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TimeoutError) or "timeout" in type(cause).__name__.lower():
            return TIMEOUT
        cause = cause.__cause__
    return INDEX_ERROR
