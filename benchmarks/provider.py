"""An embedding provider over HTTP (issue 26): the worker through it against it alone, and a
backfill under a requests-per-minute limit against the limit's own bound.

    .venv/bin/python benchmarks/provider.py [--notes 1000] [--rounds 3] [--url URL]
        [--texts-per-request 32] [--requests-in-flight 4] [--rpm 120] [--rpm-notes 320] [--json]

The provider is Infinity serving all-MiniLM-L6-v2 (its own virtualenv, ``.venv-infinity``,
started here on a free loopback port; see docs/tests.md), or any OpenAI-compatible provider
at ``--url`` (``$PROVIDER_API_KEY`` for its key). The corpus is ``corpus.py``'s short one.

* **alone**: the texts sent straight to the provider with httpx, ``texts_per_request`` a
  request and ``requests_in_flight`` requests at once, as the plan sends them: texts/s.
* **worker**: every job queued first (SQLite queue, embedded Chroma in a temporary folder, the
  model version ``backend: http`` at the provider), then ``worker.run(drain=True)`` timed from
  a full queue until the last batch is stored: jobs/s, and its ratio to alone (target >= 0.8;
  the median of ``--rounds`` rounds, alone and worker alternating, each shown).
* **rate limit**: ``requests_per_minute: --rpm`` with 8 texts a request; ``--rpm-notes`` jobs
  drained by the worker. The bound is what the limit lets through at most: the jobs' requests
  at ``rpm / 60`` a second, less the one request the bucket holds at the start. The ratio
  bound / time is at most 1 (the limit is never exceeded) and near 1 when it is used fully.

Figures are ratios within one run; the machine's load (``uptime``) is printed with them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline()

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.infinity starts Infinity

import httpx  # noqa: E402
from corpus import build_corpus  # noqa: E402
from measure import Collector, write_plan  # noqa: E402

from constellation.jobs import Job  # noqa: E402
from constellation.producer import send_jobs, validate  # noqa: E402
from constellation.services import Services  # noqa: E402
from constellation.worker import WorkerSettings, build_worker  # noqa: E402
from phases.operate.provision import provision  # noqa: E402

KEY_VARIABLE = "PROVIDER_API_KEY"


def provider_section(url: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "model": args.model,
        "api_key": "${" + KEY_VARIABLE + ":-}",
        "texts_per_request": args.texts_per_request,
        "requests_in_flight": args.requests_in_flight,
        **extra,
    }


def alone(url: str, texts: list[str], args: argparse.Namespace) -> float:
    """Texts per second the provider embeds sent straight to it, as the plan would send."""
    key = os.environ.get(KEY_VARIABLE, "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    size = args.texts_per_request
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with httpx.Client(headers=headers, timeout=120, trust_env=False) as client:

        def post(chunk: list[str]) -> None:
            reply = client.post(f"{url}/embeddings", json={"model": args.model, "input": chunk})
            reply.raise_for_status()
            assert len(reply.json()["data"]) == len(chunk)

        post(chunks[0])  # warm
        started = time.perf_counter()
        with ThreadPoolExecutor(args.requests_in_flight) as pool:
            list(pool.map(post, chunks))
        return len(texts) / (time.perf_counter() - started)


def worker(
    url: str, jobs: list[Job], args: argparse.Namespace, tag: str, **provider: Any
) -> dict[str, Any]:
    """The worker from a full queue to the last batch stored, through the provider."""
    with tempfile.TemporaryDirectory(prefix="bench-provider-") as folder:
        plan = write_plan(
            Path(folder),
            "local.yaml",
            {
                "data_dir": folder,
                "consumer": {
                    "max_batch_size": args.batch_size,
                    "max_batch_timeout": "100ms",
                    "max_concurrency": args.concurrency,
                },
                "models": {
                    3: {
                        "name": "provider-model",
                        "backend": "http",
                        "dimensions": 384,
                        "provider": provider_section(url, args, **provider),
                    }
                },
                "default_version": 3,
            },
        )
        with Services(plan) as services:
            provision(plan, services)
            fresh = [Job(j.user_id, f"{j.note_id}~{tag}", j.text, j.created, 3) for j in jobs]
            send_jobs(services.queue, validate(fresh, plan.models))
            collector = Collector()
            settings = WorkerSettings(
                max_batch_size=args.batch_size,
                max_batch_timeout=0.1,
                max_concurrency=args.concurrency,
                wait_time=0.0,
                visibility_timeout=60.0,
                poll_interval=0.05,
            )
            run = build_worker(plan, services, recorders=(collector,), settings=settings)
            started = time.perf_counter()
            summary = run.run(drain=True)
            seconds = (collector.last_batch_at or time.perf_counter()) - started
            processed = int(summary.stats["processed"])  # type: ignore[call-overload]
            report = services.embedder(3).report()  # type: ignore[attr-defined]
    return {
        "jobs": processed,
        "seconds": round(seconds, 2),
        "rate": processed / seconds,
        "requests": report.requests,
        "rate_limited": report.rate_limited,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="an OpenAI-compatible base URL (default: start Infinity)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--texts-per-request", type=int, default=32)
    parser.add_argument("--requests-in-flight", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rpm", type=int, default=120)
    parser.add_argument("--rpm-notes", type=int, default=320)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    server = None
    url = args.url
    if url is None:
        from tests.support.infinity import API_KEY, infinity_server

        logs = Path(tempfile.mkdtemp(prefix="bench-infinity-"))
        server = infinity_server(logs)
        server.start(timeout=300)
        url = f"{server.url}/v1"
        os.environ[KEY_VARIABLE] = API_KEY
    try:
        jobs = build_corpus(args.notes)
        texts = [j.text for j in jobs]
        rounds = []
        for n in range(args.rounds):
            bare = alone(url, texts, args)
            through = worker(url, jobs, args, f"r{n}")
            rounds.append({"alone": bare, "worker": through["rate"], **through})
            print(
                f"round {n + 1}: alone {bare:,.1f} texts/s, worker {through['rate']:,.1f} "
                f"jobs/s ({through['rate'] / bare:.2f} x), {through['requests']} requests",
                file=sys.stderr,
            )
        ratios = [r["worker"] / r["alone"] for r in rounds]

        limited_args = argparse.Namespace(**{**vars(args), "texts_per_request": 8})
        limited = worker(
            url, jobs[: args.rpm_notes], limited_args, "rpm", requests_per_minute=args.rpm
        )
        requests = math.ceil(args.rpm_notes / 8)
        bound = (requests - 1) / (args.rpm / 60)
        result = {
            "notes": args.notes,
            "texts_per_request": args.texts_per_request,
            "requests_in_flight": args.requests_in_flight,
            "rounds": [
                {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}
                for r in rounds
            ],
            "ratio_median": round(statistics.median(ratios), 3),
            "rate_limit": {
                "requests_per_minute": args.rpm,
                "jobs": limited["jobs"],
                "requests": limited["requests"],
                "seconds": limited["seconds"],
                "bound_seconds": round(bound, 2),
                "bound_over_time": round(bound / limited["seconds"], 3),
            },
            "load": os.getloadavg(),
        }
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"worker through the provider / the provider alone: median {result['ratio_median']:.2f} x "
        f"({', '.join(f'{r:.2f}' for r in ratios)}); {args.notes} notes, "
        f"{args.texts_per_request} texts a request, {args.requests_in_flight} in flight"
    )
    rl = result["rate_limit"]
    print(
        f"backfill at {args.rpm} requests/min: {rl['jobs']} jobs in {rl['seconds']} s, "
        f"{rl['requests']} requests; the limit's bound {rl['bound_seconds']} s "
        f"(bound / time {rl['bound_over_time']:.3f})"
    )
    print(f"load average: {', '.join(f'{x:.2f}' for x in result['load'])}")


if __name__ == "__main__":
    main()
