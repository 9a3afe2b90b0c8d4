"""The embed worker: batch processing (:mod:`.process`) driven by a consumer loop (:mod:`.runner`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from constellation.worker.control import ConsumerSwitch
from constellation.worker.events import FailureSink, FanOut, Recorder, WorkerStats
from constellation.worker.failure_warnings import FailureFanOut, FailureWarnings
from constellation.worker.process import BatchProcessor
from constellation.worker.runner import Worker
from constellation.worker.settings import RunSummary, WorkerSettings, WorkerStatus

if TYPE_CHECKING:
    from constellation.plan import Plan
    from constellation.services import Services

__all__ = [
    "BatchProcessor",
    "RunSummary",
    "Worker",
    "WorkerSettings",
    "WorkerStats",
    "WorkerStatus",
    "build_worker",
    "settings_from_plan",
]


def settings_from_plan(plan: Plan) -> WorkerSettings:
    c = plan.consumer
    return WorkerSettings(
        max_batch_size=c.max_batch_size,
        max_batch_timeout=c.max_batch_timeout,
        max_concurrency=c.max_concurrency,
        wait_time=float(plan.queue.wait_time),
        visibility_timeout=float(plan.queue.visibility_timeout),
        poll_interval=c.poll_interval,
    )


def build_worker(
    plan: Plan,
    services: Services,
    *,
    switch: ConsumerSwitch | None = None,
    recorders: tuple[Recorder, ...] = (),
    failures: FailureSink | None = None,
    on_status: Callable[[WorkerStatus], None] | None = None,
    settings: WorkerSettings | None = None,
) -> Worker:
    """A worker for the plan's queue, index and models."""
    stats = WorkerStats()
    processor = BatchProcessor(
        queue=services.queue,
        dead_letter=services.dead_letter,
        index_for=services.index,
        embedder_for=services.embedder,
        models={version: model.name for version, model in plan.models.items()},
        max_job_bytes=plan.consumer.max_job_bytes,
        max_retries=plan.consumer.max_retries,
        recorder=FanOut(stats, *recorders),
        # every failure is logged (warning, with its reason, once per kind per minute) and
        # recorded wherever the caller keeps them (the failure table, for `recover`)
        failures=FailureFanOut(FailureWarnings(), *([failures] if failures else [])),
        max_write_records=plan.consumer.max_write_batch,
        # gathered messages are deleted before their visibility needs extending
        max_write_delay=min(plan.consumer.max_write_delay, plan.queue.visibility_timeout / 2),
    )
    return Worker(
        services.queue,
        processor,
        settings or settings_from_plan(plan),
        stats=stats,
        switch=switch,
        on_status=on_status,
        upstreams=services.upstreams(),
    )
