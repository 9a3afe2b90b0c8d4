"""``constellation tune``: measure the worker on this machine and recommend its settings.

Each trial is the real worker (the plan's model, preprocessing, batching and index writes) on a
sample of the notes, with one ``max_batch_size`` x ``max_concurrency``. The trials run on a
scratch copy of the plan in a temporary folder (SQLite queue, embedded Chroma), so nothing the
plan names is touched: the model, which dominates a worker's cost, is the plan's own, loaded
once and shared by every trial. Each trial embeds fresh note ids, so none is skipped as
unchanged.

The recommendation is the fastest trial; among trials within 5% of it, the one with the fewest
batches in flight and then the smallest batch (less memory, lower latency for the same rate).
It is written to ``<data_dir>/tune.json`` (:mod:`phases.operate.tuned`), where ``doctor`` reads it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from constellation.embedders.provider import HttpEmbedder
from constellation.errors import ConstellationError
from constellation.jobs import Job
from constellation.plan import Plan
from constellation.plan.service import QueueConfig
from constellation.producer import send_jobs, validate
from constellation.services import Services
from constellation.wiring.migration import Migration
from constellation.worker import WorkerSettings, build_worker
from constellation.worker.events import BatchTiming
from phases.operate.provision import provision
from phases.operate.tuned import Tuned, write_tuned
from phases.sample_notes import sample_notes

DEFAULT_BATCH_SIZES = (10, 20, 50)
DEFAULT_CONCURRENCIES = (1, 4)
#: trials this close to the fastest count as equally fast
CLOSE = 0.95


@dataclass(frozen=True)
class Trial:
    """One setting measured: jobs embedded and stored per second, and the batches' times."""

    max_batch_size: int
    max_concurrency: int
    jobs: int
    seconds: float
    jobs_per_second: float
    batch_p95_ms: float


@dataclass(frozen=True)
class TuneReport:
    model: str
    version: int
    #: where the sample came from: the notes source, or Python's documentation
    sample_from: str
    sample: int
    trials: list[Trial]
    recommended: Trial
    #: the plan's consumer section with the recommendation, to paste
    snippet: str
    path: Path
    notes: list[str] = field(default_factory=list)
    #: through a provider: the texts per second its limits allow (None: no limit set), which
    #: the trials can never beat
    limit_rate: float | None = None


class _Timings:
    """A worker recorder that keeps each batch's timing and when the last one ended."""

    def __init__(self) -> None:
        self.batches: list[BatchTiming] = []
        self.last = 0.0
        self._lock = threading.Lock()

    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        pass

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        pass

    def job_deferred(self) -> None:
        pass

    def batch_done(self, timing: BatchTiming) -> None:
        with self._lock:
            self.batches.append(timing)
            self.last = time.perf_counter()


def tune(
    m: Migration,
    *,
    sample: int = 200,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    concurrencies: Sequence[int] = DEFAULT_CONCURRENCIES,
    version: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> TuneReport:
    """Run one trial per batch size x concurrency, recommend one, store it for ``doctor``."""
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    if not batch_sizes or not concurrencies or min(*batch_sizes, *concurrencies) < 1:
        raise ValueError("give at least one batch size and one concurrency, each at least 1")
    plan = m.plan
    version = plan.default_version if version is None else version
    if version not in plan.models:
        raise ValueError(f"model version {version} is not in the plan's models")
    say = progress or (lambda _text: None)
    texts, sample_from, notes = _sample(m, sample, version)
    embedder = m.services.embedder(version)
    say(f"loading {plan.models[version].name}")
    embedder.embed([job.text for job in texts[:8]])  # load and warm up once, for every trial

    trials = []
    with tempfile.TemporaryDirectory(prefix="constellation-tune-") as folder:
        scratch = _scratch_plan(plan, Path(folder))
        with Services(scratch, embedders={version: embedder}) as services:
            provision(scratch, services)
            for n, (size, concurrency) in enumerate(
                (s, c) for c in concurrencies for s in batch_sizes
            ):
                say(f"trial {n + 1}: batches of {size}, {concurrency} in flight")
                jobs = [
                    Job(j.user_id, f"{j.note_id}~tune{n}", j.text, j.created, version)
                    for j in texts
                ]
                trials.append(_trial(scratch, services, jobs, size, concurrency))

    best = max(trial.jobs_per_second for trial in trials)
    close = [t for t in trials if t.jobs_per_second >= CLOSE * best]
    chosen = min(close, key=lambda t: (t.max_concurrency, t.max_batch_size))
    model = plan.models[version].name
    path = write_tuned(
        plan.data_dir,
        Tuned(chosen.max_batch_size, chosen.max_concurrency, round(chosen.jobs_per_second, 3)),
        {
            "measured_at": time.time(),
            "model": model,
            "version": version,
            "sample": len(texts),
            "sample_from": sample_from,
            "trials": [vars(t) for t in trials],
        },
    )
    bound = (
        embedder.limits_bound([j.text for j in texts])
        if isinstance(embedder, HttpEmbedder)
        else None
    )
    if isinstance(embedder, HttpEmbedder):
        notes = [*notes, *_provider_notes(embedder, best, bound)]
    snippet = (
        "consumer:\n"
        f"  max_batch_size: {chosen.max_batch_size}\n"
        f"  max_concurrency: {chosen.max_concurrency}\n"
    )
    return TuneReport(
        model,
        version,
        sample_from,
        len(texts),
        trials,
        chosen,
        snippet,
        path,
        notes,
        limit_rate=bound[0] if bound else None,
    )


def _provider_notes(
    embedder: HttpEmbedder, best: float, bound: tuple[float, str] | None
) -> list[str]:
    """What the provider's rate and limits say about the trials."""
    report = embedder.report()
    said = []
    if report.latency_ms is not None:
        said.append(
            f"the provider answered {report.requests:,} requests, {report.latency_ms:,.0f} ms "
            f"each (median), {report.rate_limited:,} of them 429"
        )
    if bound is not None:
        rate, limit = bound
        said.append(
            f"the provider's {limit} allow {rate:,.1f} texts/s; the best trial made "
            f"{best:,.1f} jobs/s ({best / rate:.0%} of it)"
        )
        if best >= CLOSE * rate:
            said.append(
                "the limits set the pace, not the worker: more batches in flight will not "
                "help (the recommendation takes the fewest that reach it)"
            )
    return said


def _sample(m: Migration, size: int, version: int) -> tuple[list[Job], str, list[str]]:
    """Notes from the app's database; Python's documentation when it has none to give."""
    try:
        found = m.source.sample(size)
    except ConstellationError as exc:
        found, why = [], f"the notes source cannot be read ({exc})"
    else:
        why = "the notes source is empty"
    found = [note for note in found if note.content.strip()]
    if found:
        return [note.job(version) for note in found], "the notes source", []
    notes = [f"{why}: the sample is {size} notes of Python's documentation"]
    return [n.job(version) for n in sample_notes(size)], "Python's documentation", notes


def _scratch_plan(plan: Plan, folder: Path) -> Plan:
    """The plan with its queue and index replaced by local ones in ``folder``."""
    queue = QueueConfig(
        name=plan.queue.name,
        dead_letter=plan.queue.dead_letter,
        visibility_timeout=plan.queue.visibility_timeout,
        wait_time=0,
        fifo=plan.queue.fifo,
    )
    index = plan.index.model_copy(
        update={"adapter": "chroma", "path": folder / "chroma", "url": None, "auth_token": None}
    )
    return plan.model_copy(update={"data_dir": folder, "queue": queue, "index": index})


def _trial(plan: Plan, services: Services, jobs: list[Job], size: int, concurrency: int) -> Trial:
    """Queue every job, then time the worker from a full queue to the last batch stored."""
    send_jobs(services.queue, validate(jobs, plan.models))
    timings = _Timings()
    settings = WorkerSettings(
        max_batch_size=size,
        max_batch_timeout=0.1,
        max_concurrency=concurrency,
        wait_time=0.0,
        visibility_timeout=float(plan.queue.visibility_timeout),
        poll_interval=0.05,
    )
    worker = build_worker(plan, services, recorders=(timings,), settings=settings)
    started = time.perf_counter()
    summary = worker.run(drain=True)
    ended = timings.last or time.perf_counter()
    seconds = max(ended - started, 1e-9)
    done = int(summary.stats.get("processed", 0))  # type: ignore[call-overload]
    batch = sorted(b.total_seconds for b in timings.batches)
    p95 = batch[min(len(batch) - 1, int(0.95 * len(batch)))] if batch else 0.0
    return Trial(
        max_batch_size=size,
        max_concurrency=concurrency,
        jobs=done,
        seconds=round(seconds, 3),
        jobs_per_second=round(done / seconds, 3),
        batch_p95_ms=round(1000 * p95, 1),
    )
