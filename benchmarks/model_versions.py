"""What does model version 2 buy? Throughput of each shipped model version, and their agreement.

Runs every model version of ``plans/local.yaml`` (1: all-MiniLM-L6-v2 on torch; 2: the same
weights on ONNX Runtime, int8-quantized) over the same corpus as ``worker_throughput.py``:

* throughput: texts/s embedding the corpus in batches of ``--batch-size`` (after a warm-up),
  with per-batch latency percentiles;
* agreement: for a sample of notes, each note's own text searched among its user's notes in each
  version's vector space (exact cosine top-K, as the index would return), and the overlap of the
  two top-K lists; plus the cosine between the two versions' vectors of the same text.

    .venv/bin/python benchmarks/model_versions.py [--notes 2000] [--batch-size 20] [--json]
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from worker_throughput import build_corpus  # noqa: E402

from constellation.ledger.comparisons import overlap, percentile  # noqa: E402
from constellation.plan import load_plan  # noqa: E402
from constellation.preprocess import prepare  # noqa: E402
from constellation.services import build_embedder  # noqa: E402


def embed_all(
    embedder: Any, texts: list[str], batch_size: int
) -> tuple[np.ndarray, list[float], float]:
    """All vectors, each batch's seconds, and the total seconds."""
    embedder.embed(texts[:batch_size])  # warm-up: load, export if needed, first-call costs
    batches, rows = [], []
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        t = time.perf_counter()
        rows.append(embedder.embed(texts[start : start + batch_size]))
        batches.append(time.perf_counter() - t)
    return np.concatenate(rows), batches, time.perf_counter() - started


def agreement(
    users: list[str], a: np.ndarray, b: np.ndarray, sample: int, top_k: int
) -> dict[str, Any]:
    """Top-K overlap of each sampled note's own-text search within its user, version a vs b."""
    rng = np.random.default_rng(5)
    owners = np.array(users)
    overlaps = []
    for i in rng.choice(len(users), size=min(sample, len(users)), replace=False):
        mine = np.flatnonzero(owners == users[i])
        top_a = mine[np.argsort(-(a[mine] @ a[i]))[:top_k]]
        top_b = mine[np.argsort(-(b[mine] @ b[i]))[:top_k]]
        overlaps.append(overlap([str(x) for x in top_a], [str(x) for x in top_b]))
    cosines = (a * b).sum(axis=1)
    return {
        "sampled_notes": len(overlaps),
        "top_k": top_k,
        "mean_overlap": float(np.mean(overlaps)),
        "min_overlap": float(np.min(overlaps)),
        "identical_top_k": float(np.mean([o == 1.0 for o in overlaps])),
        "vector_cosine_mean": float(cosines.mean()),
        "vector_cosine_min": float(cosines.min()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--sample", type=int, default=500, help="notes searched for the overlap")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    jobs = build_corpus(args.notes)
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        plan = load_plan(ROOT / "plans/local.yaml").model_copy(update={"data_dir": Path(tmp)})
        results: dict[str, Any] = {
            "notes": len(jobs),
            "batch_size": args.batch_size,
            "versions": {},
        }
        vectors: dict[int, np.ndarray] = {}
        for version in sorted(plan.models):
            embedder = build_embedder(plan, version)
            texts = [p.text or " " for p in prepare([j.text for j in jobs], embedder)]
            matrix, batches, seconds = embed_all(embedder, texts, args.batch_size)
            vectors[version] = matrix
            model = plan.model(version)
            results["versions"][version] = {
                "model": model.name,
                "backend": model.backend + (f" ({model.quantize})" if model.quantize else ""),
                "texts_per_s": len(texts) / seconds,
                "batch_ms": {q: 1000 * (percentile(batches, q) or 0) for q in (50, 95, 99)},
            }
        first, *others = sorted(vectors)
        base = results["versions"][first]["texts_per_s"]
        for version in others:
            results["versions"][version]["speedup"] = (
                results["versions"][version]["texts_per_s"] / base
            )
            results[f"agreement_{first}_{version}"] = agreement(
                [j.user_id for j in jobs], vectors[first], vectors[version], args.sample, args.top_k
            )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        render(results)
    return 0


def render(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"model versions on {results['notes']:,} notes, batches of {results['batch_size']}"
    )
    for column in (
        "version",
        "model",
        "backend",
        "texts/s",
        "batch ms p50 / p95 / p99",
        "speed-up",
    ):
        table.add_column(column, justify="right" if column not in ("model", "backend") else "left")
    for version, row in results["versions"].items():
        ms = row["batch_ms"]
        table.add_row(
            str(version),
            row["model"],
            row["backend"],
            f"{row['texts_per_s']:,.1f}",
            f"{ms[50]:,.0f} / {ms[95]:,.0f} / {ms[99]:,.0f}",
            f"{row.get('speedup', 1.0):.2f}x",
        )
    console.print(table)
    for key, value in results.items():
        if key.startswith("agreement_"):
            a, b = key.split("_")[1:]
            agree = Table(title=f"agreement of version {a} and version {b}")
            agree.add_column("measure")
            agree.add_column("value", justify="right")
            agree.add_row(
                f"mean top-{value['top_k']} overlap ({value['sampled_notes']} notes)",
                f"{value['mean_overlap']:.3f}",
            )
            agree.add_row("minimum overlap", f"{value['min_overlap']:.3f}")
            agree.add_row("identical top-K lists", f"{value['identical_top_k']:.1%}")
            agree.add_row(
                "cosine of the two vectors of a text (mean / min)",
                f"{value['vector_cosine_mean']:.4f} / {value['vector_cosine_min']:.4f}",
            )
            console.print(agree)


if __name__ == "__main__":
    raise SystemExit(main())
