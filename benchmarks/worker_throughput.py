"""Worker throughput: the bare model against the embed worker end to end (issue 3's benchmark).

    .venv/bin/python benchmarks/worker_throughput.py [--notes 2000] [--backends embedded,sqs]
        [--batch-size 20] [--concurrency 3] [--memory] [--json]

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

The pieces live beside this script: ``corpus.py`` (the corpus and its description),
``measure.py`` (the bare model and the worker), ``memory.py`` (the memory check) and
``report.py`` (the Rich tables). This script holds the command line and the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
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

from corpus import build_corpus, describe_corpus  # noqa: E402
from measure import backend_plan, bench_bare, bench_worker, load_model  # noqa: E402
from memory import bench_memory, memory_child  # noqa: E402
from report import render  # noqa: E402

from constellation.plan import load_plan  # noqa: E402


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
