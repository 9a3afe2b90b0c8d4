"""Worker throughput: the bare model against the embed worker end to end (issue 3's benchmark).

    .venv/bin/python benchmarks/worker_throughput.py [--notes 2000] [--corpora short,long]
        [--backends embedded,sqs] [--batch-size 20] [--concurrency 3] [--pipeline] [--memory]
        [--langchain] [--json]

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
* with ``--langchain``: LangChain's ``index()`` over Chroma with the same model object and
  texts (``langchain_index.py``; the ``bench`` extra), as ratios to the same bare model;
* with ``--memory``: the worker's peak RSS with N and 10 x N jobs queued (N = ``--notes``),
  each in a fresh process that handles the first N jobs, so a backlog that grows memory shows.

Targets (issues 3, 14 and 25): worker texts/s >= 0.9 x the bare model's one sorted call on the
embedded default, on both corpora, and >= 0.9 x its best configuration (the best of torch's
one call and two streams and the ONNX file's one and two sessions); ahead of LangChain's
``index()``; unchanged notes >= 3,000 jobs/s.

The pieces live beside this script: ``corpus.py`` (the corpus and its description),
``bare.py`` (the bare model), ``measure.py`` (the worker), ``memory.py`` (the memory check) and
``report.py`` (the Rich tables). This script holds the command line and the run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
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

from bare import bench_embedder, bench_sorted, load_model  # noqa: E402
from corpus import CORPORA, build_corpus, describe_corpus  # noqa: E402, F401
from langchain_index import bench_langchain  # noqa: E402
from measure import backend_plan, bench_worker  # noqa: E402
from memory import bench_memory, memory_child  # noqa: E402
from report import render  # noqa: E402

from constellation.embedders.onnx import OnnxEmbedder  # noqa: E402
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
    parser.add_argument(
        "--langchain", action="store_true", help="also LangChain's index() (the bench extra)"
    )
    parser.add_argument(
        "--torch-worker", action="store_true", help="also the worker with version 1 on torch"
    )
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
    # The bare model in every configuration it offers, the best of them the strictest baseline:
    # torch's one length-sorted encode over the whole corpus, in forward passes of
    # encode_batch_size (4 measured fastest on 2 CPU cores), and the same sorted texts dealt to
    # the worker's streams; the plan's ONNX file (version 1's backend) on one session with
    # every core and on one session a stream.
    default_model = load_plan(REPO / "plans" / "local.yaml").model(1)
    passes = default_model.encode_batch_size
    streams = default_model.streams  # the worker's model threads, for the bare form of them
    onnx_folder = Path(tempfile.mkdtemp(prefix="bench-onnx-"))  # links to the machine's export
    atexit.register(shutil.rmtree, onnx_folder, True)
    onnx = {
        n: OnnxEmbedder(
            default_model.name, package=default_model.package, cache_dir=onnx_folder, streams=n
        )
        for n in sorted({1, streams})
    }
    results: dict[str, Any] = {
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "passes": passes,
        "v1_backend": default_model.backend,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "corpora": {},
    }
    for corpus_name in corpora:
        jobs = CORPORA[corpus_name](args.notes)
        texts = [job.text for job in jobs]
        warmup = texts[: 3 * args.batch_size]
        progress(f"{corpus_name}: bare model (torch, ONNX) on {len(texts)} texts")
        before = _bare(model, onnx, texts, passes, streams)
        runs: dict[str, dict[str, Any]] = {}
        for name in backends:
            progress(f"{corpus_name}: worker on {name}, then the same jobs unchanged")
            with backend_plan(name, args) as plan:
                runs[name] = bench_worker(plan, jobs, warmup, unchanged=True)
        if args.torch_worker and "embedded" in backends:
            progress(f"{corpus_name}: worker on embedded with version 1 on torch")
            with backend_plan("embedded", args, v1_backend="sentence-transformers") as plan:
                runs["embedded, torch"] = bench_worker(plan, jobs, warmup)
        langchain: dict[str, dict[str, Any]] = {}
        if args.langchain:
            progress(f"{corpus_name}: LangChain's index() over Chroma (torch, ONNX)")
            langchain["torch"] = bench_langchain(
                lambda batch: model.encode(
                    batch, batch_size=passes, normalize_embeddings=True, convert_to_numpy=True
                ),
                jobs,
            )
            langchain["onnx"] = bench_langchain(onnx[1].embed, jobs)
        progress(f"{corpus_name}: bare model again (the ratios use the mean of both)")
        after = _bare(model, onnx, texts, passes, streams)
        bare: dict[str, Any] = {"texts": len(texts), "streams": streams}
        for key in before:
            bare[key] = (before[key]["rate"] + after[key]["rate"]) / 2
            bare[f"{key}_before"], bare[f"{key}_after"] = before[key]["rate"], after[key]["rate"]
        bare["cpu_ms_per_text"] = (
            before["rate"]["cpu_ms_per_text"] + after["rate"]["cpu_ms_per_text"]
        ) / 2
        best = max(bare[key] for key in before)
        bare["best"] = best
        for run in [*runs.values(), *langchain.values()]:
            run["ratio"] = run["rate"] / bare["rate"]
            run["ratio_to_best"] = run["rate"] / best
            if "rate_to_last_stored" in run:  # LangChain has no queue to drain
                run["ratio_to_last_stored"] = run["rate_to_last_stored"] / bare["rate"]
        entry: dict[str, Any] = {
            "corpus": describe_corpus(jobs, model),
            "bare": bare,
            "worker": runs,
        }
        if langchain:
            entry["langchain"] = langchain
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


def _bare(
    model: Any, onnx: dict[int, Any], texts: list[str], passes: int, streams: int
) -> dict[str, dict[str, Any]]:
    """One measurement of each bare configuration (keys as in the results' ``bare``)."""
    return {
        "rate": bench_sorted(model, texts, passes),
        "streams_rate": bench_sorted(model, texts, passes, streams=streams),
        "onnx_rate": bench_embedder(onnx[1], texts, streams=1),
        "onnx_streams_rate": bench_embedder(onnx[streams], texts, streams=streams),
    }


if __name__ == "__main__":
    raise SystemExit(main())
