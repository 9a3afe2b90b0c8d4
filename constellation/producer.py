"""Sending jobs: validate first, then send in batches, reporting every rejection.

Used by ``constellation enqueue``, the Python client, backfills and requeues, so every producer
inside Constellation checks the job contract before anything reaches the queue.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constellation.jobs import TOO_DEEP, Job, Rejection, job_from_dict
from constellation.queues.port import Outgoing, Queue

#: how many jobs go to the queue per send_batch call (the SQS adapter splits it into tens)
SEND_BATCH = 100


def note_group(user_id: str, note_id: str) -> str:
    """The message group of a note's jobs on a FIFO queue: a stable hash of user and note (the
    same in every producer), so a note's edits are delivered one at a time, in order."""
    key = f"{user_id}\0{note_id}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def job_message(job: Job) -> Outgoing:
    """The queue message of a job, in its note's group."""
    return Outgoing(job.to_body(), group=note_group(job.user_id, job.note_id))


@dataclass(frozen=True)
class Rejected:
    """A job that was not sent: where it came from (line or position) and why."""

    line: int
    reason: str
    detail: str


@dataclass
class SendReport:
    sent: int = 0
    message_ids: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def send_jobs(
    queue: Queue,
    items: Iterable[tuple[int, Job | Rejection]],
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = SEND_BATCH,
    keep_ids: bool = False,
) -> SendReport:
    """Send the valid jobs of ``items`` ((line, job-or-rejection) pairs) in batches."""
    report = SendReport()
    batch: list[tuple[int, Job]] = []

    def flush() -> None:
        result = queue.send_batch([job_message(job) for _, job in batch])
        for index, reason in result.failed.items():
            report.rejected.append(Rejected(batch[index][0], "send_failed", reason))
        report.sent += len(result.succeeded)
        if keep_ids:
            report.message_ids.extend(result.succeeded)
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for line, item in items:
        if isinstance(item, Rejection):
            report.rejected.append(Rejected(line, item.reason, item.detail))
            if on_progress:
                on_progress(1)
            continue
        batch.append((line, item))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def validate(
    jobs: Iterable[Job | Mapping[str, Any]],
    versions: Collection[int],
    max_bytes: int | None = None,
    *,
    now_ms: int | None = None,
) -> Iterator[tuple[int, Job | Rejection]]:
    """Number jobs from 1 and check each against the contract (Job objects are re-checked
    too), and against the worker's size limit when ``max_bytes`` is given: whatever the worker
    would dead-letter is refused here, before it is sent."""
    for position, job in enumerate(jobs, start=1):
        data = json.loads(job.to_body()) if isinstance(job, Job) else job
        yield position, sized(job_from_dict(data, versions=versions, now_ms=now_ms), max_bytes)


def sized(item: Job | Rejection, max_bytes: int | None) -> Job | Rejection:
    """``item``, or a ``too_large`` rejection when its body is over ``max_bytes`` (the body
    the queue gets, measured as the worker measures it)."""
    if max_bytes is None or isinstance(item, Rejection):
        return item
    size = len(item.to_body().encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        return Rejection(
            "too_large",
            f"body is {size:,} bytes, the limit is {max_bytes:,} (consumer.max_job_bytes)",
        )
    return item


def read_jsonl(
    path: Path,
    versions: Collection[int],
    max_bytes: int | None = None,
    *,
    now_ms: int | None = None,
) -> Iterator[tuple[int, Job | Rejection]]:
    """One job per line of a JSON Lines file; blank lines are skipped; lines numbered from 1.

    A line that is not UTF-8 is rejected by its number (with the byte and column), and the
    lines around it are read as usual: one bad line never stops a file."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                yield (
                    number,
                    Rejection(
                        "not_utf8", f"not valid UTF-8 (byte 0x{byte:02x} at column {exc.start + 1})"
                    ),
                )
                continue
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, Rejection("not_json", f"{exc.msg} at column {exc.colno}")
                continue
            except RecursionError:
                yield number, Rejection("not_json", TOO_DEEP)
                continue
            yield number, sized(job_from_dict(data, versions=versions, now_ms=now_ms), max_bytes)


def count_lines(path: Path) -> int:
    """Non-blank lines of a file (for a progress bar's total)."""
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())
