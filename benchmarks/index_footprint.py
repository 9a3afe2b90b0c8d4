"""What a Chroma index costs per record on disk and in memory: the capacity check's factors.

Three fresh embedded indexes (our ChromaStore, cosine, HNSW defaults) get random unit vectors
with the worker's six metadata keys, spread over 20 users: ``--records`` / 4 and ``--records``
records at the first dimension, ``--records`` / 4 at the second. Disk is the folder's size
once the store is closed; memory is the resident-set growth of a fresh process from opening
the collection to having counted it and searched every user once (which loads the index).
The two sizes separate what every index pays from the cost per record; the second dimension
splits that cost into ``dimensions x 4 x factor + fixed``, as ``phases/checks/capacity.py`` uses it
(CHROMA_DISK, CHROMA_MEMORY).

    .venv/bin/python benchmarks/index_footprint.py                 # 20,000 records, 384 and 768
    .venv/bin/python benchmarks/index_footprint.py --records 5000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from constellation import records  # noqa: E402
from constellation.index.chroma import ChromaStore  # noqa: E402
from constellation.index.port import IndexSpec, VectorRecord  # noqa: E402
from phases.checks.capacity import folder_size  # noqa: E402

USERS = 20


def rss() -> int:
    """Resident set size of this process, bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def fill(folder: Path, dims: int, count: int) -> float:
    """Write ``count`` records into a new index in ``folder``; returns the seconds it took."""
    rng = np.random.default_rng(dims)
    store = ChromaStore(path=folder, write=True)
    store.create(IndexSpec("footprint", dims, "cosine"))
    index = store.open("footprint")
    started = time.perf_counter()
    for start in range(0, count, 500):
        batch = []
        for i in range(start, min(start + 500, count)):
            vector = rng.normal(size=dims).astype(np.float32)
            user, note = f"user-{i % USERS:02d}", f"note-{i:07d}"
            meta = {
                records.USER: user,
                records.NOTE: note,
                records.VERSION: 1,
                records.CREATED: 1_767_225_600_000 + i,
                records.HASH: f"{i:032x}",
                records.MODEL: "all-MiniLM-L6-v2",
            }
            batch.append(
                VectorRecord(
                    records.record_id(user, note, 1), vector / np.linalg.norm(vector), meta
                )
            )
        index.upsert(batch)
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def loaded_memory(folder: Path, dims: int) -> int:
    """RSS growth of a fresh process from an opened collection (not yet read) to having
    counted it and searched each user once: what loading the index for search costs (plus
    the first searches' own allocations, which the fit below separates out)."""
    code = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.index_footprint import rss, USERS\n"
        "from constellation.index.chroma import ChromaStore\n"
        f"store = ChromaStore(path=__import__('pathlib').Path({str(folder)!r}), write=False)\n"
        "index = store.open('footprint')\n"
        f"q = np.ones({dims}, dtype=np.float32) / {dims} ** 0.5\n"
        "before = rss()\n"
        "index.count()\n"
        "for u in range(USERS):\n"
        "    index.query(q, user_id=f'user-{u:02d}', top_k=10)\n"
        "print(rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout.strip().splitlines()[-1])


def fit(
    small: dict[str, int], large: dict[str, int], other: dict[str, int], what: str
) -> dict[str, float]:
    """``total = base + records x (dims x 4 x factor + fixed)`` from three runs: two sizes at
    the first dimension (per record, and the base every index pays) and the small size at the
    second dimension (how the per-record cost grows with the dimension)."""
    per = (large[what] - small[what]) / (large["records"] - small["records"])
    base = small[what] - small["records"] * per
    per_other = (other[what] - base) / other["records"]
    factor = (per_other - per) / ((other["dims"] - small["dims"]) * 4)
    return {
        "per_record": round(per),
        "base": round(base),
        "factor": round(factor, 2),
        "fixed": round(per - small["dims"] * 4 * factor),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--dims", default="384,768")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    first, second = (int(d) for d in args.dims.split(","))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for dims, count in (
            (first, args.records // 4),
            (first, args.records),
            (second, args.records // 4),
        ):
            folder = Path(tmp) / f"d{dims}-n{count}"
            seconds = fill(folder, dims, count)
            runs.append(
                {
                    "dims": dims,
                    "records": count,
                    "fill_seconds": round(seconds, 1),
                    "disk": folder_size(folder),
                    "memory": loaded_memory(folder, dims),
                }
            )
    small, large, other = runs
    fits = {what: fit(small, large, other, what) for what in ("disk", "memory")}
    if args.json:
        print(json.dumps({"runs": runs, "footprint": fits}, indent=2))
        return
    print(f"{'dims':>5} {'records':>8} {'fill s':>7} {'disk MiB':>9} {'memory MiB':>11}")
    for r in runs:
        print(
            f"{r['dims']:>5} {r['records']:>8,} {r['fill_seconds']:>7} "
            f"{r['disk'] / 2**20:>9.1f} {r['memory'] / 2**20:>11.1f}"
        )
    for what, f in fits.items():
        print(
            f"{what}: {f['per_record']:,} B per record at {first} dims (raw vector {first * 4:,} B), "
            f"base {f['base'] / 2**20:.1f} MiB; bytes per record = dims x 4 x {f['factor']} + {f['fixed']}"
        )


if __name__ == "__main__":
    main()
