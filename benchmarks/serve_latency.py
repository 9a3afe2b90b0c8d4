"""What the HTTP layer costs: ``/query`` and ``/search`` over loopback against the same calls
made in-process, on the same index, the same queries, in the same run.

    .venv/bin/python benchmarks/serve_latency.py [--notes 1000] [--requests 240]
        [--concurrency 1,8,32] [--json]

One run:

1. builds an app being migrated in a temporary folder (embedded default): the benchmark corpus
   (``corpus.py``) as the notes table and the old index (embedded inline, as the app did), the
   new index filled by the worker, the migration in phase 2 at 50% read traffic (dual writes,
   both systems searched, every search compared);
2. in-process, with the real model: ``Client.query`` and the router's ``search`` for the same
   queries, at each concurrency (threads);
3. ``constellation serve`` as its own process on a free loopback port (it loads its own copy of
   the model), then a bounded load generator: N threads, each with one keep-alive connection,
   sending ``/query`` and ``/search`` with a token; ``/healthz`` too, the bare HTTP round trip.

It prints p50/p95/p99 latency and requests/s per endpoint and concurrency, both ways, and the
HTTP layer's cost: the difference of the medians, in milliseconds. The machine's load average
is printed before and after; on a shared machine read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline()

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from corpus import build_corpus  # noqa: E402

from constellation.client import Client  # noqa: E402
from constellation.migration.source import Note, create_notes_table, insert_notes  # noqa: E402
from constellation.plan import Plan, load_plan  # noqa: E402
from constellation.producer import send_jobs, validate  # noqa: E402
from constellation.services import Services  # noqa: E402
from constellation.wiring.migration import Migration  # noqa: E402
from constellation.wiring.worker import run_worker  # noqa: E402
from phases.operate.provision import provision  # noqa: E402
from tests.support.serve import TOKEN_ENV, TOKENS_SECTION, WRITE_TOKEN, ServeProcess  # noqa: E402

TOKEN = WRITE_TOKEN


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=240, help="per endpoint and concurrency")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(seconds, q)) * 1000, 2) for q in (50, 95, 99)}


def load(call: Callable[[int], None], requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` calls of ``call(i)`` from ``concurrency`` threads: latencies and rate."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.perf_counter()
            call(i)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {**percentiles(latencies), "rps": round(len(latencies) / wall, 1)}


class HttpClients:
    """One keep-alive connection per thread; every answer must be a 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, body: dict[str, Any] | None) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        method = "GET" if body is None else "POST"
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                self.local.conn = conn
            try:
                conn.request(method, path, payload, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                # the server closed an idle keep-alive connection: open another, once
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")


def build_app(folder: Path, count: int, model: Any) -> tuple[Path, Plan, list[tuple[str, str]]]:
    """The app in phase 2 at 50%: notes, old index, new index; and the queries to send."""
    data = yaml.safe_load((REPO / "plans/local.yaml").read_text())
    data.update(data_dir=str(folder / "data"))
    data["consumer"].update(max_batch_timeout="100ms")
    data["service"] = {**TOKENS_SECTION, "max_in_flight": 256}
    path = folder / "local.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    os.environ.update(TOKEN_ENV)
    plan = load_plan(path)
    jobs = build_corpus(count)
    notes = [Note(j.note_id, j.user_id, j.text, j.created, j.created) for j in jobs]
    services = Services(plan, embedders=dict.fromkeys(plan.models, model))
    provision(plan, services)
    create_notes_table(plan.source_url)
    with Migration(plan, services) as m:
        insert_notes(m.source, notes)
        m.legacy.write_many(notes)
        send_jobs(services.queue, validate(jobs, plan.models))
        run_worker(plan, services, m.state, drain=True)
        m.state.change(
            "benchmark",
            "phase 2 at 50%",
            phase=2,
            status="running",
            write_mode="dual",
            read_traffic=0.5,
            traffic_step=1,
        )
    services.close()
    rng = random.Random(5)
    queries = []
    for job in rng.sample(jobs, min(400, len(jobs))):
        words = job.text.split()
        start = rng.randrange(max(1, len(words) - 6))
        queries.append((job.user_id, " ".join(words[start : start + rng.randint(3, 7)])))
    return path, plan, queries


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when None)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    how: str,
    endpoint: str,
    call: Callable[[int], None],
    args: argparse.Namespace,
    c: int,
    pid: int | None,
) -> dict[str, Any]:
    print(f"{how} {endpoint} x{c} ...", file=sys.stderr)
    cpu = cpu_seconds(pid)
    run = load(call, args.requests, c)
    cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / args.requests
    return {"how": how, "endpoint": endpoint, "concurrency": c, **run, "cpu_ms": round(cpu_ms, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    from tests.support.model import real_embedder

    results: dict[str, Any] = {"load_before": os.getloadavg(), "runs": []}
    model = real_embedder()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        print(f"building the app ({args.notes} notes) ...", file=sys.stderr)
        path, plan, queries = build_app(folder, args.notes, model)

        def query_body(i: int) -> dict[str, Any]:
            user, text = queries[i % len(queries)]
            return {"text": text, "userId": user, "topK": 10}

        # Both read the index only, so both run at once: each in-process run is followed at
        # once by the same run over HTTP, under the same load from the rest of the machine.
        serve = ServeProcess(path, logs=folder / "logs")
        services = Services(plan, write=False, embedders=dict.fromkeys(plan.models, model))
        client = Client(plan, services)
        # The old system read-only here: the service holds its embedded folder to write it.
        migration = Migration(plan, services, legacy_write=False)
        router = migration.router()
        try:
            serve.wait_ready()
            clients = HttpClients(serve.port)
            pid = serve.process.pid

            def user_text(i: int) -> tuple[str, str]:
                user, text = queries[i % len(queries)]
                return text, user

            pairs: dict[str, tuple[Callable[[int], Any] | None, Callable[[int], None]]] = {
                "/healthz": (None, lambda i: clients.post("/healthz", None)),
                "/query": (
                    lambda i: client.query(*user_text(i)),
                    lambda i: clients.post("/query", query_body(i)),
                ),
                "/search": (
                    lambda i: router.search(*user_text(i)),
                    lambda i: clients.post("/search", query_body(i)),
                ),
            }
            for endpoint, (local, remote) in pairs.items():
                for i in range(10):  # warm-up: connections, caches, the model's first calls
                    remote(i)
                    if local is not None:
                        local(i)
                for c in levels:
                    if local is not None:
                        results["runs"].append(
                            measure("in-process", endpoint, local, args, c, None)
                        )
                    results["runs"].append(measure("http", endpoint, remote, args, c, pid))
        finally:
            router.close()
            migration.close()
            client.close()
            serve.stop()
    results["load_after"] = os.getloadavg()
    results["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        render(results)
    return 0


def render(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = {(r["how"], r["endpoint"], r["concurrency"]): r for r in results["runs"]}
    table = Table(
        title="serve latency: HTTP on loopback against the same calls in-process",
        title_justify="left",
    )
    columns = (
        "endpoint",
        "clients",
        "HTTP ms p50 / p95 / p99",
        "req/s",
        "in-process ms p50 / p95 / p99",
        "req/s ",
        "HTTP cost ms (p50)",
        "CPU ms/req HTTP / in-process",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for (how, endpoint, c), run in runs.items():
        if how != "http":
            continue
        local = runs.get(("in-process", endpoint, c))
        table.add_row(
            endpoint,
            str(c),
            f"{run['p50']:.1f} / {run['p95']:.1f} / {run['p99']:.1f}",
            f"{run['rps']:.1f}",
            f"{local['p50']:.1f} / {local['p95']:.1f} / {local['p99']:.1f}" if local else "-",
            f"{local['rps']:.1f}" if local else "-",
            f"{run['p50'] - local['p50']:+.1f}" if local else f"{run['p50']:.1f} (all of it)",
            f"{run['cpu_ms']:.1f} / {local['cpu_ms']:.1f}" if local else f"{run['cpu_ms']:.1f} / -",
        )
    console = Console(width=max(Console().width, 150))
    console.print(table)
    before, after = results["load_before"], results["load_after"]
    console.print(
        f"load average {before[0]:.1f} before, {after[0]:.1f} after, on {results['cpus']} CPUs. "
        "HTTP cost: HTTP p50 minus in-process p50 at the same concurrency, measured back to back. "
        "CPU ms/req: the serve process's CPU per request, against this process's per call."
    )


if __name__ == "__main__":
    raise SystemExit(main())
