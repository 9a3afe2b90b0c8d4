"""What the queue is told about each message of a batch, and what is recorded about it.

The :class:`BatchProcessor` decides each job's outcome; the :class:`Acknowledger` carries it
out: delete the messages whose records are stored (or that were skipped), leave failures for
redelivery, dead-letter a job on its last allowed attempt or at once when its body is invalid
(send to the dead-letter queue first, then delete: never the other way round), and report every
outcome to the metrics recorder and the failure log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import uuid4

from constellation.errors import QueueError
from constellation.jobs import Job, Rejection, ids_of
from constellation.preprocess import Prepared
from constellation.queues.port import Message, Outgoing, Queue
from constellation.worker.events import (
    EMPTY,
    PROCESSED,
    SKIPPED,
    BatchTiming,
    FailureSink,
    JobFailure,
    Recorder,
)


@dataclass
class Pending:
    """A valid job on its way to the index."""

    message: Message
    job: Job
    id: str
    #: older deliveries of the same record in this batch; they share this job's fate
    duplicates: list[Message] = field(default_factory=list)
    #: the text after normalization, and its source hash (records.source_hash)
    normalized: str = ""
    source: str = ""
    #: set once the text went through the tokenizer (not for an unchanged note)
    prepared: Prepared | None = None
    hash: str = ""


@dataclass(frozen=True)
class Failure:
    pending: Pending
    error_type: str
    detail: str
    #: no retry can mend it (the provider refused the text itself): dead-letter at once
    final: bool = False


@dataclass
class BatchOutcome:
    """What happened to one batch of jobs (for tests and logs); not the queue port's per-entry
    :class:`~constellation.queues.port.BatchResult`."""

    stored: int = 0
    skipped: int = 0
    empty: int = 0
    rejected: int = 0
    failed: int = 0
    dead_lettered: int = 0
    #: given back to the queue uncounted (the embedding provider is unavailable)
    deferred: int = 0
    timing: BatchTiming | None = None


class Acknowledger:
    """Deletes, dead-letters and records, message by message."""

    def __init__(
        self,
        *,
        queue: Queue,
        dead_letter: Queue,
        max_retries: int,
        recorder: Recorder,
        failures: FailureSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.dead_letter = dead_letter
        self.max_retries = max_retries
        self.recorder = recorder
        self.failures = failures
        self.clock = clock

    def acknowledge(self, done: list[tuple[Pending, str]], result: BatchOutcome) -> None:
        receipts = []
        for item, _ in done:
            receipts.append(item.message.receipt)
            receipts.extend(m.receipt for m in item.duplicates)
        if receipts:
            # Not deleted means redelivered later, and then skipped by its content hash.
            with suppress(QueueError):
                self.queue.delete_batch(receipts)
        now = self.clock()
        for item, outcome in done:
            truncated = bool(item.prepared and item.prepared.truncated)
            for message in (item.message, *item.duplicates):
                latency = max(0.0, now - message.sent_at)
                kind = outcome if message is item.message else SKIPPED
                self.recorder.job_done(
                    kind, latency, truncated=truncated and message is item.message
                )
                if kind == PROCESSED:
                    result.stored += 1
                elif kind == EMPTY:
                    result.empty += 1
                else:
                    result.skipped += 1

    def fail(self, failure: Failure, result: BatchOutcome) -> None:
        job = failure.pending.job
        for message in (failure.pending.message, *failure.pending.duplicates):
            result.failed += 1
            moved = False
            if failure.final or message.receive_count > self.max_retries:  # no more attempts
                moved = self._dead_letter(message, failure.error_type, failure.detail)
                result.dead_lettered += moved
            # Otherwise it stays invisible: the queue redelivers it after its visibility timeout.
            self.recorder.job_failed(failure.error_type, dead_lettered=moved)
            self._log_failure(message, failure.error_type, failure.detail, moved, job)

    def defer(self, items: list[Pending], result: BatchOutcome) -> None:
        """Give jobs back to the queue at once, not as failures: the embedding provider is
        unavailable. Where the queue allows (SQLite) the receive is not counted; on SQS it is,
        so a message whose next failure would be its last is sent again as a fresh copy and
        then deleted (its count starts over; a copy left by a failed delete is skipped later
        by its content hash), and no outage ever moves a job to the dead-letter queue."""
        messages = [m for item in items for m in (item.message, *item.duplicates)]
        renew = [m for m in messages if m.receive_count > self.max_retries]
        back = [m.receipt for m in messages if m.receive_count <= self.max_retries]
        if back:
            with suppress(QueueError):  # not released: visible again after its timeout
                self.queue.release_batch(back)
        for message in renew:
            self._renew(message)
        for _ in messages:
            self.recorder.job_deferred()
        result.deferred += len(messages)

    def _renew(self, message: Message) -> None:
        copy = Outgoing(message.body, message.attributes, group=message.group, dedup=uuid4().hex)
        try:
            if self.queue.send_batch([copy]).ok:
                self.queue.delete(message.receipt)
        except QueueError:
            pass  # stays as it is: visible again after its timeout

    def reject(self, message: Message, rejection: Rejection) -> None:
        moved = self._dead_letter(message, rejection.reason, rejection.detail)
        self.recorder.job_failed(rejection.reason, dead_lettered=moved)
        self._log_failure(message, rejection.reason, rejection.detail, moved, None)

    def _log_failure(
        self, message: Message, error_type: str, detail: str, moved: bool, job: Job | None
    ) -> None:
        if self.failures is None:
            return
        ids = (job.user_id, job.note_id, job.version) if job else ids_of(message.body)
        with suppress(Exception):  # the failure log must never stop the worker
            self.failures.failed(
                JobFailure(
                    self.clock(),
                    error_type,
                    detail[:1000],
                    moved,
                    message.id,
                    message.receive_count,
                    *ids,
                )
            )

    def _dead_letter(self, message: Message, reason: str, detail: str) -> bool:
        """Send to the dead-letter queue with the reason, then delete: never the other way round."""
        attributes = {
            "reason": reason,
            "detail": detail[:1000],
            "sourceQueue": self.queue.name,
            "sourceMessageId": message.id,
            "receiveCount": str(message.receive_count),
            "failedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            # fresh deduplication id: on a FIFO dead-letter queue the same body dead-lettered
            # again (after a recover) must not be dropped as a copy while it is deleted here
            outgoing = Outgoing(message.body, attributes, group=message.group, dedup=uuid4().hex)
            self.dead_letter.send_batch([outgoing]).succeeded[0]
        except (QueueError, IndexError):
            return False  # stays on the queue; its redrive policy is the backstop
        # If the delete fails, a copy stays behind and is dead-lettered again: a duplicate in
        # the dead-letter queue, never a lost job.
        with suppress(QueueError):
            self.queue.delete(message.receipt)
        return True
