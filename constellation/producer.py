"""Sending jobs: validate first, then send in batches, reporting every rejection.

Used by ``constellation enqueue``, the Python client, backfills and requeues, so every producer
inside Constellation checks the job contract before anything reaches the queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constellation.jobs import Job, Rejection, job_from_dict
from constellation.queues.port import Outgoing, Queue

#: how many jobs go to the queue per send_batch call (the SQS adapter splits it into tens)
SEND_BATCH = 100


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
        result = queue.send_batch([Outgoing(job.to_body()) for _, job in batch])
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
    jobs: Iterable[Job | Mapping[str, Any]], versions: Collection[int]
) -> Iterator[tuple[int, Job | Rejection]]:
    """Number jobs from 1 and check each against the contract (Job objects are re-checked too)."""
    for position, job in enumerate(jobs, start=1):
        data = json.loads(job.to_body()) if isinstance(job, Job) else job
        yield position, job_from_dict(data, versions=versions)


def read_jsonl(path: Path, versions: Collection[int]) -> Iterator[tuple[int, Job | Rejection]]:
    """One job per line of a JSON Lines file; blank lines are skipped; lines numbered from 1."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, Rejection("not_json", f"{exc.msg} at column {exc.colno}")
                continue
            yield number, job_from_dict(data, versions=versions)


def count_lines(path: Path) -> int:
    """Non-blank lines of a file (for a progress bar's total)."""
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())
