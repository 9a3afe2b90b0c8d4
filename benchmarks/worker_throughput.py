"""Worker throughput: the bare model against the embed worker end to end (issue 3's benchmark).

    .venv/bin/python benchmarks/worker_throughput.py [--notes 2000] [--corpora short,long]
        [--backends embedded,sqs] [--batch-size 20] [--concurrency 3] [--pipeline] [--memory]
        [--json]

Two fixed corpora from CPython's own documentation: ``short`` (pydoc's help topics and stdlib
docstrings, split into notes of varied length, a quarter one-liners) and ``long`` (single
paragraphs of 120 to 1,500 characters), spread over 20 users. For each it measures:

* the bare model: ONE sentence-transformers ``encode`` over the whole corpus (length-sorted,
  normalized, after a warm-up), the best call the model offers, before and after the worker;
* the worker, per backend: every job enqueued first, then ``worker.run(drain=True)`` timed from
  a full queue until everything is stored. ``embedded`` is the default plan (SQLite queue,
  embedded Chroma in a temporary folder); ``sqs`` is a moto server plus ``chroma run``. Then
  the same jobs again, unchanged, three times: jobs/s (the median round), model calls and
  records written (both must be 0);
* with ``--memory``: the worker's peak RSS with N and 10 x N jobs queued (N = ``--notes``),
  each in a fresh process that handles the first N jobs, so a backlog that grows memory shows.

Targets (issues 3 and 14): worker texts/s >= 0.9 x the bare model's one sorted call on the
embedded default, on both corpora; unchanged notes >= 3,000 jobs/s.

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

from offline import quiet_offline

# moto accepts any credentials; boto3 still wants some from its standard chain
quiet_offline(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.support.servers (moto and `chroma run` subprocesses)

from corpus import CORPORA, build_corpus, describe_corpus  # noqa: E402, F401
from measure import backend_plan, bench_sorted, bench_worker, load_model  # noqa: E402
from memory import bench_memory, memory_child  # noqa: E402
from report import render  # noqa: E402

from constellation.plan import load_plan  # noqa: E402


# main ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument("--corpora", default="short,long", help="short, long or both")
    parser.add_argument("--backends", default="embedded,sqs", help="embedded, sqs or both")
    parser.add_argument("--batch-size", type=int, default=20, help="consumer.max_batch_size")
    parser.add_argument("--concurrency", type=int, default=3, help="consumer.max_concurrency")
    parser.add_argument(
        "--model-processes", type=int, default=0, help="models.<v>.processes (0: in-process)"
    )
    parser.add_argument("--pipeline", action="store_true", help="also run with the model stubbed")
    parser.add_argument("--memory", action="store_true", help="peak RSS at N and 10 x N queued")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--memory-child", metavar="PLAN", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _names(value: str, known: Sequence[str], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = set(names) - set(known)
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(sorted(unknown))} (choose {', '.join(known)})")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.notes)))
        return 0
    backends = _names(args.backends, ("embedded", "sqs"), "backend(s)")
    corpora = _names(args.corpora, tuple(CORPORA), "corpus")

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    model = load_model()
    # The baseline is the best bare-model call: one length-sorted encode over the whole corpus,
    # in forward passes of the plan's encode_batch_size (4 measured fastest on 2 CPU cores).
    default_model = load_plan(REPO / "plans" / "local.yaml").model(1)
    passes = default_model.encode_batch_size
    streams = default_model.streams  # the worker's model threads, for the bare form of them
    results: dict[str, Any] = {
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "passes": passes,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "corpora": {},
    }
    for corpus_name in corpora:
        jobs = CORPORA[corpus_name](args.notes)
        texts = [job.text for job in jobs]
        warmup = texts[: 3 * args.batch_size]
        progress(f"{corpus_name}: bare model, one sorted encode of {len(texts)} texts")
        before = bench_sorted(model, texts, passes)
        streams_before = bench_sorted(model, texts, passes, streams=streams)
        runs: dict[str, dict[str, Any]] = {}
        for name in backends:
            progress(f"{corpus_name}: worker on {name}, then the same jobs unchanged")
            with backend_plan(name, args) as plan:
                runs[name] = bench_worker(plan, jobs, warmup, unchanged=True)
        progress(f"{corpus_name}: bare model again (the ratio uses the mean of both)")
        after = bench_sorted(model, texts, passes)
        streams_after = bench_sorted(model, texts, passes, streams=streams)
        bare = {
            "texts": len(texts),
            "rate": (before["rate"] + after["rate"]) / 2,
            "rate_before": before["rate"],
            "rate_after": after["rate"],
            "cpu_ms_per_text": (before["cpu_ms_per_text"] + after["cpu_ms_per_text"]) / 2,
            # the same sorted texts dealt to the worker's model streams, encoding at once
            "streams": streams,
            "streams_rate": (streams_before["rate"] + streams_after["rate"]) / 2,
            "streams_rate_before": streams_before["rate"],
            "streams_rate_after": streams_after["rate"],
        }
        best = max(bare["rate"], bare["streams_rate"])
        for run in runs.values():
            run["ratio"] = run["rate"] / bare["rate"]
            run["ratio_to_last_stored"] = run["rate_to_last_stored"] / bare["rate"]
            run["ratio_to_best"] = run["rate"] / best
        entry: dict[str, Any] = {
            "corpus": describe_corpus(jobs, model),
            "bare": bare,
            "worker": runs,
        }
        if args.pipeline and "embedded" in backends:
            progress(f"{corpus_name}: worker on embedded with the model stubbed")
            with backend_plan("embedded", args) as plan:
                entry["pipeline"] = bench_worker(plan, jobs, warmup, stub=True)
        results["corpora"][corpus_name] = entry

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
    results["load_average_after"] = os.getloadavg()

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        render(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
