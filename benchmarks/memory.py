"""The memory check: the worker's peak memory with N and 10 x N jobs queued.

``bench_memory`` queues a backlog on the embedded default, then starts a fresh process
(``worker_throughput.py --memory-child``) that runs ``memory_child``: it handles the first N
jobs and reports its RSS peak (VmHWM after a reset) and its Python heap peak (tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from contextlib import suppress
from pathlib import Path
from typing import Any

from corpus import build_corpus
from measure import backend_plan

from constellation.plan import load_plan
from constellation.producer import send_jobs, validate
from constellation.services import Services
from constellation.worker import build_worker
from phases.operate.provision import provision

#: the script whose ``--memory-child`` option runs ``memory_child`` in a fresh process
SCRIPT = str(Path(__file__).resolve().with_name("worker_throughput.py"))


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
            [sys.executable, SCRIPT, "--memory-child", str(plan.file), "--notes", str(process)],
            check=True,
            capture_output=True,
            text=True,
        )
    return {"backlog": backlog, **json.loads(child.stdout.strip().splitlines()[-1])}
