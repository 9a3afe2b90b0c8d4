"""The embed worker end to end on one backend (the bare model it is compared with: ``bare.py``).

* ``bench_worker``: every job enqueued first, then ``worker.run(drain=True)`` timed from a full
  queue until everything is stored, on a plan from ``backend_plan`` (``embedded``: the default
  plan in a temporary folder; ``sqs``: a moto server plus ``chroma run``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from corpus import SEED

from constellation.jobs import Job
from constellation.plan import Plan, load_plan
from constellation.producer import send_jobs, validate
from constellation.services import Services
from constellation.worker import build_worker
from constellation.worker.events import BatchTiming
from phases.operate.provision import provision

REPO = Path(__file__).resolve().parents[1]
#: how many times the unchanged jobs are sent again (the median round is the figure)
UNCHANGED_ROUNDS = 3


def _percentiles(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99 (milliseconds by default) of a non-empty sample."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    return {f"p{q}": round(float(np.percentile(values, q)) * scale, 1) for q in (50, 95, 99)}


# the worker ------------------------------------------------------------------------------------
class Collector:
    """A worker recorder that keeps every job latency and batch timing."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.batches: list[BatchTiming] = []
        self.last_batch_at = 0.0
        self._lock = threading.Lock()

    def job_done(self, outcome: str, latency_seconds: float | None, *, truncated: bool) -> None:
        if latency_seconds is not None:
            with self._lock:
                self.latencies.append(latency_seconds)

    def job_failed(self, error_type: str, *, dead_lettered: bool) -> None:
        pass  # counted by the worker's own stats

    def job_deferred(self) -> None:
        pass

    def batch_done(self, timing: BatchTiming) -> None:
        with self._lock:
            self.batches.append(timing)
            self.last_batch_at = time.perf_counter()


def time_encode(embedder: Any) -> list[float]:
    """Record how long each of the worker's model calls takes, without its wait for the model:
    each ``encode`` of the torch model, each text's session run of the ONNX model (it runs
    texts one at a time); nothing when the model runs in processes of its own."""
    target = _model_call(embedder)
    if target is None:
        return []
    owner, name = target
    original = getattr(owner, name)
    durations: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - started)

    setattr(owner, name, timed)
    return durations


def _model_call(embedder: Any) -> tuple[Any, str] | None:
    """Where the embedder's forward pass is called: the torch model's ``encode``, or the ONNX
    embedder's per-text ``_pool`` (a session run and the pooling)."""
    if hasattr(embedder, "model"):
        return embedder.model, "encode"
    if hasattr(embedder, "_pool"):
        return embedder, "_pool"
    return None


def stub_model(embedder: Any) -> None:
    """Replace the model's forward pass with random unit vectors: what is left is the pipeline
    (for the ONNX model: tokenizing stays, as cheap as it is)."""
    rng = np.random.default_rng(SEED)

    def encode(texts: Sequence[str], **_: Any) -> np.ndarray:
        vectors = rng.standard_normal((len(texts), embedder.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    target = _model_call(embedder)
    if target is None:
        raise SystemExit("--pipeline stubs a local model; this plan's model is not one")
    owner, name = target
    if name == "encode":
        owner.encode = encode
    else:  # the ONNX embedder's per-text session run
        owner._pool = lambda _encoding: encode([""])[0]


def write_plan(folder: Path, base: str, overrides: dict[str, Any]) -> Plan:
    """A copy of ``plans/<base>`` in ``folder`` with ``overrides`` merged in, loaded as usual."""
    data = yaml.safe_load((REPO / "plans" / base).read_text())
    for section, values in overrides.items():
        if isinstance(values, dict):
            data[section] = {**data.get(section, {}), **values}
        else:
            data[section] = values
    path = folder / base
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_plan(path)


def consumer_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_batch_size": args.batch_size,
        "max_batch_timeout": "100ms",
        "max_concurrency": args.concurrency,
    }


def model_overrides(name: str, processes: int, v1_backend: str | None = None) -> dict[str, Any]:
    """The plan's models with ``processes`` set on each (none when 0) and version 1 on
    ``v1_backend`` (as the plan has it when None)."""
    if not processes and not v1_backend:
        return {}
    base = "local.yaml" if name == "embedded" else "staging.yaml"
    models = yaml.safe_load((REPO / "plans" / base).read_text())["models"]
    if processes:
        models = {v: {**m, "processes": processes} for v, m in models.items()}
    if v1_backend:
        models[1] = {**models[1], "backend": v1_backend}
    return {"models": models}


@contextmanager
def backend_plan(
    name: str, args: argparse.Namespace, v1_backend: str | None = None
) -> Iterator[Plan]:
    """A plan of one backend in a temporary folder; ``sqs`` also starts moto and `chroma run`.
    ``v1_backend``: model version 1 on that backend instead of the plan's."""
    consumer = consumer_settings(args)
    models = model_overrides(name, getattr(args, "model_processes", 0), v1_backend)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        if name == "embedded":
            yield write_plan(
                folder, "local.yaml", {"data_dir": str(folder), "consumer": consumer, **models}
            )
            return
        from tests.support import servers

        moto = servers.moto_server(folder)
        chroma = servers.chroma_server(folder / "chroma-data", folder)
        for server in (moto, chroma):
            server.start()
            stack.callback(server.stop)
        yield write_plan(
            folder,
            "staging.yaml",
            {
                "data_dir": str(folder),
                "queue": {"endpoint_url": moto.url},
                "index": {"url": chroma.url},
                "consumer": consumer,
                "legacy": {"url": chroma.url},
                **models,
            },
        )


def bench_worker(
    plan: Plan,
    jobs: Sequence[Job],
    warmup: Sequence[str],
    *,
    stub: bool = False,
    unchanged: bool = False,
) -> dict[str, Any]:
    """Enqueue every job, then time ``run(drain=True)`` from a full queue to all stored.

    ``stub``: the model returns random vectors at once, which measures the pipeline's own cost.
    ``unchanged``: afterwards, the same jobs again (a restarted backfill): timed the same way,
    they must all be skipped, with no model call and no write.
    """
    collector = Collector()
    with Services(plan) as services:
        provision(plan, services)
        embedder = services.embedder()
        embedder.embed(list(warmup))  # load and warm up, as for the bare model
        if stub:
            stub_model(embedder)
        encode_seconds = time_encode(embedder)
        started = time.perf_counter()
        sent = send_jobs(services.queue, validate(jobs, plan.models)).sent
        enqueue_seconds = time.perf_counter() - started

        worker = build_worker(plan, services, recorders=(collector,))
        cpu = time.process_time()
        started = time.perf_counter()
        summary = worker.run(drain=True)
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        seconds = ended - started
        stored = services.index().count()
        left = services.queue.depth().total
        again = _bench_unchanged(plan, services, jobs, encode_seconds) if unchanged else None

    batches = collector.batches
    model_busy = sum(encode_seconds)
    return {
        "texts": stored,
        "sent": sent,
        "left_in_queue": left,
        "outcomes": summary.stats,
        "seconds": seconds,
        "rate": stored / seconds,
        # until the last batch was stored, leaving out the drain's exit check
        "rate_to_last_stored": stored / (collector.last_batch_at - started) if batches else 0.0,
        "cpu_ms_per_text": 1000 * cpu / max(stored, 1),
        # from the last batch stored to run() returning: the drain's exit check
        "drain_tail_seconds": ended - collector.last_batch_at if batches else 0.0,
        "enqueue_rate": sent / enqueue_seconds,
        "batches": len(batches),
        "job_latency_ms": _percentiles(collector.latencies),
        "batch_ms": _percentiles([b.total_seconds for b in batches]),
        "batch_model_ms": _percentiles([b.model_seconds for b in batches]),
        "encode_ms": _percentiles(encode_seconds),
        "model_busy_share": model_busy / seconds,
        "model_rate_inside_worker": stored / model_busy if model_busy else 0.0,
        "unchanged": again,
    }


def _bench_unchanged(
    plan: Plan,
    services: Services,
    jobs: Sequence[Job],
    encode_seconds: list[float],
    rounds: int = UNCHANGED_ROUNDS,
) -> dict[str, Any]:
    """The same jobs sent again and drained, ``rounds`` times: jobs/s (the median round, and
    each), and what the model and index were asked over all of them.

    One round of 1,000 skips lasts about a quarter of a second, so one pause of the shared
    machine moves it by half: the median of three is the figure, the first round (the index
    just written, Chroma still settling its log) is shown beside it.
    """
    calls = len(encode_seconds)
    index = services.index()
    upserts: list[int] = []
    original = index.upsert

    def upsert(records: Any) -> Any:
        upserts.append(len(records))
        return original(records)

    index.upsert = upsert  # type: ignore[method-assign]
    timed: list[tuple[float, float]] = []  # (whole run, to the last batch done)
    skipped: list[int] = []  # each round's
    sent = 0
    try:
        for _ in range(rounds):
            sent = send_jobs(services.queue, validate(jobs, plan.models)).sent
            collector = Collector()
            worker = build_worker(plan, services, recorders=(collector,))
            started = time.perf_counter()
            summary = worker.run(drain=True)
            seconds = time.perf_counter() - started
            to_last = collector.last_batch_at - started if collector.batches else seconds
            timed.append((seconds, to_last))
            skipped.append(summary.stats["skipped"])
    finally:
        index.upsert = original  # type: ignore[method-assign]
    rates = [sent / whole for whole, _ in timed]
    return {
        "sent": sent,
        "rounds": rounds,
        "seconds": statistics.median(whole for whole, _ in timed),
        "rate": statistics.median(rates),
        "rate_first": rates[0],
        "round_rates": rates,
        # leaving out the drain's exit check (one exact empty reading of the SQLite queue)
        "rate_to_last_done": statistics.median(sent / last for _, last in timed),
        "skipped": min(skipped),  # in every round at least this many
        "model_calls": len(encode_seconds) - calls,
        "records_written": sum(upserts),
        "left_in_queue": services.queue.depth().total,
    }
