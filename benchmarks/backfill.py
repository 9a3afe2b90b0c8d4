"""Phase 1's backfill at scale: N notes through the queue on the embedded default, model v2.

    .venv/bin/python benchmarks/backfill.py [--notes 100000] [--users 1000] [--version 2]
        [--folder /tmp/constellation-backfill] [--json]

The notes are Python's documentation (``phases/sample_notes.py``) in a SQLite notes table; the
plan is ``plans/local.yaml`` in ``--folder`` (SQLite queue, embedded Chroma) with
``default_version`` set to ``--version`` (2: the ONNX int8 model). The model is loaded (and for
v2 exported) before the clock starts. Then ``phase1(wait=True)`` runs as the operator's
``migrate phase 1 --wait`` does: the backfill step sends every note's job, the drain step runs
the worker in this process until the queue is empty, and the exit gate is evaluated (the old
index is left empty, so its consistency gate fails by design: this measures the backfill, not
the old system). It prints the time of each step, jobs/s, and the peak RSS of the process
(``ru_maxrss``) and its Python heap's peak (tracemalloc is off: it would slow the run).

Big data stays out of the repository: ``--folder`` defaults to a folder under /tmp and is
replaced on each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline()

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from constellation.migration.source import (  # noqa: E402
    NotesSource,
    create_notes_table,
    insert_notes,
)
from constellation.plan import load_plan  # noqa: E402
from constellation.services import Services  # noqa: E402
from constellation.wiring.migration import Migration  # noqa: E402
from phases.migrate.phase1 import phase1  # noqa: E402
from phases.operate.provision import provision  # noqa: E402
from phases.sample_notes import sample_notes  # noqa: E402


def _rss_mib() -> float:
    """This process's resident memory and its children's (the model's own processes)."""
    me = str(os.getpid())
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if status.parent.name == me or fields.get("PPid", "").strip() == me:
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def texts_sample(args: argparse.Namespace, plan: Any, size: int = 10_000) -> list[str]:
    """Every k-th note of the run (``size`` of them), as the worker sends it to the model."""
    notes = sample_notes(args.notes, users=args.users)
    step = max(1, len(notes) // size)
    return [note.content for note in notes[::step][:size]]


def model_alone(plan: Any, version: int, texts: list[str]) -> dict[str, dict[str, Any]]:
    """The model file alone on ``texts`` (cut as the worker cuts them), on one and two
    streams (one ONNX session run at a time, or two at once, each with its share of cores)."""
    from bare import bench_embedder

    from constellation.preprocess import prepare
    from constellation.services import build_embedder

    rows = {}
    for streams in (1, 2):
        model = plan.model(version)
        single = plan.model_copy(
            update={
                "models": {
                    **plan.models,
                    version: model.model_copy(update={"streams": streams, "processes": 0}),
                }
            }
        )
        embedder = build_embedder(single, version)
        prepared = [p.text or " " for p in prepare(texts, embedder)]
        row = bench_embedder(embedder, prepared, streams=streams)
        rows[f"{streams} stream(s)"] = {k: round(v, 2) for k, v in row.items()}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--version", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/constellation-backfill"))
    parser.add_argument("--model-processes", type=int, default=0, help="models.<v>.processes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    data = yaml.safe_load((REPO / "plans" / "local.yaml").read_text())
    data["data_dir"] = str(args.folder / "data")
    data["default_version"] = args.version
    if args.model_processes:
        data["models"][args.version]["processes"] = args.model_processes
    plan_path = args.folder / "local.yaml"
    plan_path.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = load_plan(plan_path)

    say(f"notes table: {args.notes} notes, {args.users} users")
    create_notes_table(plan.source_url)
    source = NotesSource.from_plan(plan)
    notes = sample_notes(args.notes, users=args.users)
    for start in range(0, len(notes), 5000):
        insert_notes(source, notes[start : start + 5000])
    source.close()
    chars = sorted(len(n.content) for n in notes)
    del notes

    results: dict[str, Any] = {
        "notes": args.notes,
        "users": args.users,
        "version": args.version,
        "model": plan.models[args.version].name,
        "cpus": os.cpu_count(),
        "chars_p50": chars[len(chars) // 2],
        "chars_p95": chars[int(0.95 * len(chars))],
        "load_average_before": os.getloadavg(),
    }
    with Services(plan) as services:
        provision(plan, services)
        say(f"loading model v{args.version} ({results['model']})")
        started = time.perf_counter()
        services.embedder(args.version).embed(["warm up", "the model before the clock starts"])
        results["model_load_seconds"] = round(time.perf_counter() - started, 1)
        results["rss_after_model_mib"] = round(_rss_mib(), 1)

        m = Migration(plan, services)
        step_times: dict[str, float] = {}
        last = [time.perf_counter()]
        peak = [0.0]
        stop = threading.Event()

        def watch() -> None:  # the RSS over the run, sampled (ru_maxrss covers the load too)
            while not stop.wait(1.0):
                peak[0] = max(peak[0], _rss_mib())

        def on_step(result: Any) -> None:
            now = time.perf_counter()
            step_times[str(result.resource)] = round(now - last[0], 1)
            last[0] = now
            say(f"{result.resource}: {result.outcome} ({result.detail})")

        shown = [0.0]
        #: when the stored count first reached each multiple of 10,000
        marks: list[tuple[int, float]] = []
        drain_from: list[float] = []  # when the jobs were sent and the worker began

        def on_status(status: Any) -> None:  # a line every 30 s: a partial rate if cut short
            now = time.perf_counter()
            if not drain_from:
                drain_from.append(last[0])
            done = int(status.stats.get("processed", 0))
            while done >= 10_000 * (len(marks) + 1):
                marks.append((10_000 * (len(marks) + 1), now))
            if now - shown[0] >= 30:
                shown[0] = now
                done = status.stats.get("processed", 0)
                say(
                    f"{done} stored after {now - started:.0f} s "
                    f"({done / max(now - started, 1e-9):.1f} jobs/s), RSS {_rss_mib():.0f} MiB"
                )

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        say("phase 1 with --wait: backfill, then the worker until the queue is empty")
        started = last[0] = time.perf_counter()
        report = phase1(m, wait=True, on_step=on_step, on_status=on_status)
        seconds = time.perf_counter() - started
        stop.set()
        watcher.join()
        stored = services.index(args.version).count(version=args.version)
        tenths, previous = [], drain_from[0] if drain_from else started
        for _, at in marks:
            tenths.append(round(10_000 / max(at - previous, 1e-9), 1))
            previous = at
        results["rate_per_10000"] = tenths
        results.update(
            {
                "steps_seconds": step_times,
                "phase1_seconds": round(seconds, 1),
                "stored": stored,
                "jobs_per_second": round(stored / seconds, 1),
                "queue_left": services.queue.depth().total,
                "dead_letters": services.dead_letter.depth().total,
                "gate_passed": bool(report.gate and report.gate.passed),
                "rss_peak_in_run_mib": round(peak[0], 1),
                "ru_maxrss_mib": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
                "load_average_after": os.getloadavg(),
            }
        )
        m.close()
    say("the model alone on a sample of the same texts (sorted by length, 1 and 2 streams)")
    results["model_alone"] = model_alone(plan, args.version, texts_sample(args, plan))
    best = max(row["rate"] for row in results["model_alone"].values())
    results["model_alone_best"] = round(best, 1)
    results["x_model_end_to_end"] = round(results["jobs_per_second"] / best, 3)
    results["x_model_per_10000"] = [round(rate / best, 3) for rate in results["rate_per_10000"]]
    tenths = results["rate_per_10000"]
    if len(tenths) >= 2:
        results["last_10000_x_first"] = round(tenths[-1] / tenths[0], 3)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
