"""Chroma alone, without Constellation: what the embedded index takes, and what decides it.

    .venv/bin/python benchmarks/chroma_alone.py [--partitions 8,32,64] [--fills 0,100000]
        [--pages 1000,4000,16000] [--fields 1,8] [--sync default,10000] [--measure 5000]
        [--folder DIR] [--json]

For each combination: a fresh persistent client on ``--folder``'s disk (a temporary folder by
default), ``--partitions`` collections (cosine, like ours), filled with ``fill`` random unit
vectors of 384 dimensions spread over the collections at random; then ``--measure`` more
upserted the same way, timed. A page of ``page`` records becomes one upsert per collection
(about page / partitions records a call), as the worker's write-behind makes them. ``fields``:
1 (a user id) or 8 (the metadata our records carry: user, note, version, created, content and
source hashes, model, the user-version key). ``sync``: Chroma's default HNSW settings, or
``hnsw.sync_threshold`` (and ``batch_size``) set to the value given.

It prints records/s and CPU ms a record for the timed upserts. The issue-25 question it
answers: which of partitions, records a call, metadata and HNSW sync decide the index's rate as
it fills (docs/performance.md has a run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline()

import chromadb  # noqa: E402
import numpy as np  # noqa: E402
from chromadb.config import Settings  # noqa: E402

DIMENSION = 384


def metadata(record_id: str, fields: int) -> dict[str, Any]:
    """One user id, or the eight fields of our records (same types and sizes)."""
    user = f"user-{record_id[-4:]}"
    values: dict[str, Any] = {"userId": user}
    if fields > 1:
        values.update(
            noteId=record_id,
            version=1,
            created=1_700_000_000_000 + len(record_id),
            hash="h" * 64,
            model="all-MiniLM-L6-v2",
            source="s" * 64,
            uv=f"{user}:1",
        )
    return values


def run(
    folder: Path, partitions: int, fill: int, page: int, fields: int, sync: str, measure: int
) -> dict[str, Any]:
    """One combination in a folder of its own; the timed upserts' figures."""
    hnsw: dict[str, Any] = {"space": "cosine"}
    if sync != "default":
        hnsw.update(sync_threshold=int(sync), batch_size=min(int(sync), 1000))
    client = chromadb.PersistentClient(
        path=str(folder), settings=Settings(anonymized_telemetry=False)
    )
    collections = [
        client.create_collection(f"part-{i:03d}", configuration={"hnsw": hnsw})  # type: ignore[arg-type]
        for i in range(partitions)
    ]
    rng = np.random.default_rng(0)

    def upsert(count: int, start: int) -> None:
        for first in range(start, start + count, page):
            size = min(page, start + count - first)
            vectors = rng.standard_normal((size, DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"rec-{first + j:09d}" for j in range(size)]
            owner = rng.integers(0, partitions, size)
            for p in range(partitions):
                chosen = np.nonzero(owner == p)[0]
                if len(chosen):
                    collections[p].upsert(
                        ids=[ids[j] for j in chosen],
                        embeddings=vectors[chosen],
                        metadatas=[metadata(ids[j], fields) for j in chosen],
                    )

    upsert(fill, 0)
    cpu, started = time.process_time(), time.perf_counter()
    upsert(measure, fill)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # still a searchable index: one query answers
    assert collections[0].query(query_embeddings=[np.ones(DIMENSION, np.float32)], n_results=1)
    return {
        "partitions": partitions,
        "records": fill,
        "page": page,
        "records_a_call": round(page / partitions, 1),
        "fields": fields,
        "sync": sync,
        "rate": measure / seconds,
        "cpu_ms_per_record": 1000 * cpu / measure,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", default="64")
    parser.add_argument("--fills", default="0,100000")
    parser.add_argument("--pages", default="4000")
    parser.add_argument("--fields", default="8")
    parser.add_argument("--sync", default="default")
    parser.add_argument("--measure", type=int, default=5000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-chroma-", dir=args.folder) as tmp:
        combos = itertools.product(
            ints(args.partitions),
            ints(args.fills),
            ints(args.pages),
            ints(args.fields),
            args.sync.split(","),
        )
        for n, (partitions, fill, page, fields, sync) in enumerate(combos):
            row = run(Path(tmp) / str(n), partitions, fill, page, fields, sync, args.measure)
            rows.append(row)
            if not args.json:
                print(
                    f"{partitions:>3} partitions, {fill:>7,} records held, pages of {page:>6,} "
                    f"(~{row['records_a_call']:>6} a call), {fields} field(s), sync {sync:>7}: "
                    f"{row['rate']:7,.0f} records/s, {row['cpu_ms_per_record']:.2f} ms CPU each",
                    flush=True,
                )
    load = {"load_average_before": load_before, "load_average_after": os.getloadavg()}
    if args.json:
        print(json.dumps({"rows": rows, **load}, indent=2))
    else:
        print(f"load average before {load_before}, after {load['load_average_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
