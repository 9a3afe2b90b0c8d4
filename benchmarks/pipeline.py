"""The pipeline alone: the worker with its model replaced by a constant-time stub.

    .venv/bin/python benchmarks/pipeline.py [--jobs 5000] [--fills 0,50000,100000]
        [--write-batches 4000] [--server] [--processes 1,2,4] [--process-jobs 2000]
        [--folder DIR] [--json]

What a GPU or a remote embedding service leaves: the worker's own cost around the model
(receive, validate, hash, read what is stored, write, delete). The stub returns real-shaped
vectors (384 floats, unit length) at once and cuts nothing; everything else is the real worker
of ``plans/local.yaml`` / ``plans/staging.yaml`` (``max_batch_size`` 20, ``max_concurrency``
10, 64 partitions), drained from a full queue of ``--jobs`` new notes of 1,000 users.

1. **Embedded default** (SQLite queue, embedded Chroma on ``--folder``'s disk): jobs/s with the
   index holding each of ``--fills`` records (filled through the index port, pages of 4,000,
   real metadata), and beside each, in the same run, the index alone: ``--jobs`` fresh
   records upserted through the same port in pages of 4,000 (the most the worker could reach).
   ``--write-batches 4000,16000``: the same for each ``consumer.max_write_batch`` (the index
   alone then in pages of that size): Chroma's cost per call grows with the records a
   partition holds, so the records a call carries decide its rate. Use ``--jobs`` of at least
   the largest, or the drain ends before a write is full.
2. **``chroma run``** (``--server``): the same with the index on a Chroma server started here.
3. **Worker processes** (``--processes``): SQS on a moto server + ``chroma run``; for each
   count, a fresh queue and index, ``--process-jobs`` jobs queued, then that many worker
   processes (each with the stub) started, loaded, and released at once; jobs/s from the
   release until all have drained, and the ratio to one process.

Issue 25's targets: >= 3,000 jobs/s at 100,000 records on the embedded default (moonshot: the
index's own bulk rate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from measure import write_plan  # noqa: E402

from constellation import records  # noqa: E402
from constellation.index.port import VectorRecord  # noqa: E402
from constellation.jobs import Job  # noqa: E402
from constellation.plan import Plan, load_plan  # noqa: E402
from constellation.producer import send_jobs, validate  # noqa: E402
from constellation.services import Services  # noqa: E402
from constellation.worker import build_worker  # noqa: E402
from phases.operate.provision import provision  # noqa: E402

USERS = 1000
PAGE = 4000
MODEL = "all-MiniLM-L6-v2"
CONSUMER = {"max_batch_timeout": "100ms"}


class StubEmbedder:
    """A constant-time model: a unit vector of the right length per text, nothing cut."""

    def __init__(self, model_id: str = MODEL, dimension: int = 384) -> None:
        self.model_id = model_id
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.random.default_rng(len(texts)).standard_normal(
            (len(texts), self.dimension), dtype=np.float32
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        return [(text, False) for text in texts]


def jobs(count: int, start: int) -> list[Job]:
    """``count`` new notes of ``USERS`` users, a sentence or two each, numbered from ``start``."""
    return [
        Job(
            f"user-{(start + i) % USERS:04d}",
            f"note-{start + i:08d}",
            f"note {start + i}: a few words about the garden, the budget and a reading list.",
            1_700_000_000_000 + start + i,
            1,
        )
        for i in range(count)
    ]


def fill(services: Services, count: int, start: int, page_size: int = PAGE) -> float:
    """Upsert ``count`` records of new notes through the index port, ``page_size`` at a time;
    records/s."""
    index = services.index()
    stub = StubEmbedder()
    started = time.perf_counter()
    for page in range(start, start + count, page_size):
        batch = jobs(min(page_size, start + count - page), page)
        vectors = stub.embed([job.text for job in batch])
        index.upsert(
            [
                VectorRecord(
                    records.record_id(job.user_id, job.note_id, 1),
                    vector,
                    records.metadata(
                        job,
                        records.content_hash(job.text, MODEL),
                        MODEL,
                        records.source_hash(job.text, MODEL),
                    ),
                )
                for job, vector in zip(batch, vectors, strict=True)
            ]
        )
    return count / max(time.perf_counter() - started, 1e-9)


def drain(plan: Plan, services: Services, count: int, start: int) -> dict[str, Any]:
    """Queue ``count`` new jobs, then time ``run(drain=True)`` until all are stored."""
    send_jobs(services.queue, validate(jobs(count, start), plan.models))
    worker = build_worker(plan, services)
    cpu = time.process_time()
    started = time.perf_counter()
    summary = worker.run(drain=True)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    processed = summary.stats.get("processed", 0)
    assert processed == count, summary.stats
    return {
        "jobs": count,
        "seconds": round(seconds, 2),
        "rate": count / seconds,
        "cpu_ms_per_job": 1000 * cpu / count,
    }


def bench_fills(plan: Plan, fills: list[int], count: int) -> list[dict[str, Any]]:
    rows = []
    page = plan.consumer.max_write_batch
    with Services(plan, embedders={1: StubEmbedder()}) as services:
        provision(plan, services)
        held = 0
        for target in fills:
            if target > held:
                say(f"filling the index to {target:,} records")
                fill(services, target - held, 10_000_000 + held)
                held = target
            say(f"{held:,} records: the worker drains {count:,} jobs")
            row = {
                "records": held,
                "max_write_batch": page,
                **drain(plan, services, count, 20_000_000 + held),
            }
            held += count
            say(f"{held:,} records: the index alone takes {count:,} more")
            row["index_alone_rate"] = fill(services, count, 30_000_000 + held, page)
            held += count
            row["ratio_to_index"] = row["rate"] / row["index_alone_rate"]
            rows.append(row)
            say(f"  {row['rate']:,.0f} jobs/s, index alone {row['index_alone_rate']:,.0f}/s")
    return rows


def bench_processes(
    folder: Path, moto_url: str, chroma_url: str, counts: list[int], count: int
) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        suffix = f"{n}-{int(time.time())}"
        plan_path = folder / f"staging-{suffix}.yaml"
        plan = write_plan(
            folder,
            "staging.yaml",
            {
                "data_dir": str(folder / f"data-{suffix}"),
                "queue": {
                    "endpoint_url": moto_url,
                    "name": f"embed-{suffix}",
                    "dead_letter": f"dead-{suffix}",
                },
                "index": {"url": chroma_url, "name": f"pipeline-{suffix}"},
                "legacy": {"url": chroma_url},
                "consumer": CONSUMER,
            },
        )
        (folder / "staging.yaml").rename(plan_path)
        plan = load_plan(plan_path)
        with Services(plan) as services:
            provision(plan, services)
            send_jobs(services.queue, validate(jobs(count, 0), plan.models))
        go = folder / f"go-{suffix}"
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", str(plan_path), "--go", str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        ready = [folder / f"go-{suffix}.ready.{child.pid}" for child in children]
        deadline = time.monotonic() + 300
        while not all(path.exists() for path in ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.perf_counter()
        go.touch()
        outputs = [json.loads(child.communicate(timeout=1800)[0]) for child in children]
        seconds = time.perf_counter() - started
        with Services(plan, write=False) as services:
            stored = services.index().count()
        rows.append(
            {
                "processes": n,
                "jobs": count,
                "stored": stored,
                "received": [o["received"] for o in outputs],
                "seconds": round(seconds, 2),
                "rate": stored / seconds,
            }
        )
        say(f"{n} worker process(es): {stored / seconds:,.0f} jobs/s")
    for row in rows:
        row["ratio_to_one"] = row["rate"] / rows[0]["rate"]
    return rows


def child(plan_path: str, go: Path) -> int:
    """One worker process with the stub: load, say ready, wait for the go, drain."""
    plan = load_plan(plan_path)
    with Services(plan, embedders={1: StubEmbedder()}) as services:
        services.index()
        services.queue.depth()
        worker = build_worker(plan, services)
        Path(f"{go}.ready.{os.getpid()}").touch()
        while not go.exists():
            time.sleep(0.01)
        summary = worker.run(drain=True)
    print(json.dumps({"received": summary.received, "stats": summary.stats}))
    return 0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--fills", default="0,50000,100000")
    parser.add_argument(
        "--write-batches", default="4000", help="consumer.max_write_batch values, e.g. 4000,16000"
    )
    parser.add_argument("--server", action="store_true", help="also on `chroma run`")
    parser.add_argument("--processes", default="", help="worker process counts, e.g. 1,2,4")
    parser.add_argument("--process-jobs", type=int, default=2000)
    parser.add_argument("--folder", type=Path, default=None, help="where the data goes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--go", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.go)

    fills = [int(x) for x in args.fills.split(",") if x.strip()]
    results: dict[str, Any] = {
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=args.folder) as tmp:
        folder = Path(tmp)
        results["embedded"] = []
        for size in [int(x) for x in args.write_batches.split(",") if x.strip()]:
            embedded = write_plan(
                folder,
                "local.yaml",
                {
                    "data_dir": str(folder / f"embedded-{size}"),
                    "consumer": {**CONSUMER, "max_write_batch": size},
                },
            )
            say(f"embedded default, {embedded.index.partitions} partitions, writes of {size:,}")
            results["embedded"] += bench_fills(embedded, fills, args.jobs)
        if args.server or args.processes:
            from tests.support import servers

            chroma = servers.chroma_server(folder / "chroma-data", folder)
            moto = servers.moto_server(folder)
            for server in (chroma, moto):
                server.start()
            try:
                if args.server:
                    plan = write_plan(
                        folder,
                        "local.yaml",
                        {
                            "data_dir": str(folder / "server"),
                            "index": {"url": chroma.url},
                            "legacy": {"url": chroma.url},
                            "consumer": CONSUMER,
                        },
                    )
                    say("SQLite queue + `chroma run`")
                    results["server"] = bench_fills(plan, [0], args.jobs)
                counts = [int(x) for x in args.processes.split(",") if x.strip()]
                if counts:
                    results["processes"] = bench_processes(
                        folder, moto.url, chroma.url, counts, args.process_jobs
                    )
            finally:
                for server in (chroma, moto):
                    server.stop()
    results["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"pipeline alone (model stubbed), {args.jobs:,} jobs a measurement")
    for name in ("embedded", "server"):
        for row in results.get(name, []):
            print(
                f"{name:9} {row['records']:>8,} records, writes of {row['max_write_batch']:,}: "
                f"{row['rate']:7,.0f} jobs/s "
                f"({row['cpu_ms_per_job']:.2f} ms CPU a job); index alone "
                f"{row['index_alone_rate']:7,.0f} records/s; x index {row['ratio_to_index']:.2f}"
            )
    for row in results.get("processes", []):
        print(
            f"SQS + chroma run, {row['processes']} process(es): {row['rate']:7,.0f} jobs/s, "
            f"x one {row['ratio_to_one']:.2f} (received {row['received']})"
        )
    print(
        f"load average before {results['load_average_before']}, after {results['load_average_after']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
