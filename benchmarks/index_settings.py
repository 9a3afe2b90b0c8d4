"""The index alone through our port under Chroma's HNSW write settings.

    .venv/bin/python benchmarks/index_settings.py [--settings default,1000/10000]
        [--fills 0,100000] [--measure 5000] [--recall-queries 20] [--folder DIR] [--json]

For each setting (``default``: Chroma's own, ``batch_size`` 100 and ``sync_threshold`` 1,000;
``B/S``: ``hnsw.batch_size`` B and ``hnsw.sync_threshold`` S, set on every partition after
provision with ``collection.modify``), a fresh embedded index of ``plans/local.yaml`` (64
partitions) is filled through ``constellation/index`` in pages of 4,000 with real metadata
(``pipeline.fill``); at each of ``--fills`` records held, ``--measure`` fresh records are
upserted the same way and timed (records/s), and ``--recall-queries`` stored vectors of one
user are searched through the port against exact cosine search over that user's records
(recall at 10). Issue 25: does a larger sync interval let the index write faster?
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline
from measure import write_plan

from constellation.services import Services
from phases.operate.provision import provision


def apply(plan: Any, setting: str) -> None:
    """Set ``setting``'s HNSW batch and sync sizes on every collection of the index."""
    if setting == "default":
        return
    import chromadb
    from chromadb.config import Settings

    batch, sync = (int(x) for x in setting.split("/"))
    path = str(Path(plan.index_path).resolve())
    client = chromadb.PersistentClient(
        path=path, settings=Settings(anonymized_telemetry=False, persist_directory=path)
    )
    for collection in client.list_collections():
        collection.modify(configuration={"hnsw": {"batch_size": batch, "sync_threshold": sync}})


def recall(services: Services, queries: int, k: int = 10) -> float:
    """Recall at ``k`` of the port's search against exact search, one user's stored records."""
    index = services.index()
    user = pipeline.jobs(1, 10_000_000)[0].user_id
    probe = np.ones(384, dtype=np.float32) / np.sqrt(384)
    ids = [hit.id for hit in index.query(probe, user_id=user, top_k=5000)]
    stored = index.get(ids, include_vectors=True)
    vectors = np.asarray([stored[i].vector for i in ids], dtype=np.float32)
    k = min(k, len(ids))
    rng = np.random.default_rng(7)
    sample = rng.choice(len(ids), size=min(queries, len(ids)), replace=False)
    hits = 0
    for i in sample:
        # the stub repeats its vectors from page to page: count a hit as right when it is as
        # near as the exact k-th (ties among equal vectors are then all correct)
        kth = np.sort(vectors @ vectors[i])[-k]
        found = index.query(vectors[i], user_id=user, top_k=k)
        exact = {ids[j]: float(vectors[j] @ vectors[i]) for j in range(len(ids))}
        hits += sum(1 for hit in found if exact[hit.id] >= kth - 1e-5)
    return hits / (k * len(sample))


def run(folder: Path, setting: str, fills: list[int], measure: int, queries: int) -> list[dict]:
    folder.mkdir(parents=True)
    plan = write_plan(folder, "local.yaml", {"data_dir": str(folder / "data")})
    rows = []
    with Services(plan, embedders={1: pipeline.StubEmbedder()}) as services:
        provision(plan, services)
        apply(plan, setting)
        held = 0
        for target in fills:
            if target > held:
                pipeline.say(f"{setting}: filling to {target:,}")
                pipeline.fill(services, target - held, 10_000_000 + held)
                held = target
            rate = pipeline.fill(services, measure, 30_000_000 + held)
            held += measure
            row = {"setting": setting, "records": held - measure, "records_per_s": rate}
            if queries:
                started = time.perf_counter()
                row["recall_at_10"] = recall(services, queries)
                row["recall_seconds"] = time.perf_counter() - started
            pipeline.say(f"  {row}")
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="default,1000/10000")
    parser.add_argument("--fills", default="0,100000")
    parser.add_argument("--measure", type=int, default=5000)
    parser.add_argument("--recall-queries", type=int, default=20)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fills = [int(x) for x in args.fills.split(",")]
    out: dict[str, Any] = {"load_average_before": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="bench-index-settings-", dir=args.folder) as tmp:
        for n, setting in enumerate(args.settings.split(",")):
            out["rows"] += run(
                Path(tmp) / str(n), setting, fills, args.measure, args.recall_queries
            )
    out["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=2))
    for row in out["rows"]:
        print(
            f"{row['setting']:>12} at {row['records']:>7,}: {row['records_per_s']:7,.0f} records/s"
            + (f", recall@10 {row['recall_at_10']:.2f}" if "recall_at_10" in row else "")
        )
    print(f"load average {out['load_average_before']} -> {out['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
