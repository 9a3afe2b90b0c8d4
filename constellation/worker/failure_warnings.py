"""Failed jobs in the worker's log: at warning level, with their reason, never a flood.

During an outage every job of every batch fails the same way; one line per job would bury
the log, and the batch line alone ("0 stored, 20 failed", at info level) says nothing of why.
:class:`FailureWarnings` logs the first failure of each kind (the error type) at once with its
reason, then at most one line per kind per ``interval``, saying how many failed that way since
the line before and how many of them went to the dead-letter queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from constellation.masking import masked
from constellation.worker.events import FailureSink, JobFailure

log = logging.getLogger("constellation.worker")


class FailureWarnings:
    """A :class:`~constellation.worker.events.FailureSink` that logs (see the module doc)."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._pending: Counter[str] = Counter()
        self._dead: Counter[str] = Counter()
        self._lock = threading.Lock()

    def failed(self, failure: JobFailure) -> None:
        kind = failure.error_type
        with self._lock:
            now = self.clock()
            self._pending[kind] += 1
            self._dead[kind] += failure.dead_lettered
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                return  # counted; said in the next line of this kind
            count, dead = self._pending.pop(kind), self._dead.pop(kind, 0)
            self._last[kind] = now
        since = "" if last is None else f" in the last {now - last:.0f}s"
        tail = f", {dead} of them dead-lettered" if dead else ", retried later"
        log.warning(
            "%d job(s) failed%s (%s): %s%s",
            count,
            since,
            kind,
            masked(failure.detail),
            tail,
            extra={
                "event": "job_failed",
                "error_type": kind,
                "failed": count,
                "dead_lettered": dead,
            },
        )


class FailureFanOut:
    """Several failure sinks behind one (the log and the failure table, say)."""

    def __init__(self, *sinks: FailureSink) -> None:
        self.sinks = sinks

    def failed(self, failure: JobFailure) -> None:
        for sink in self.sinks:
            sink.failed(failure)
