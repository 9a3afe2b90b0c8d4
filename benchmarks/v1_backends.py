"""Model version 1 on torch or on ONNX Runtime (fp32): do their vectors agree, which is faster?

    .venv/bin/python benchmarks/v1_backends.py [--notes 1000] [--json]

The same all-MiniLM-L6-v2 weights, exported unquantized to ONNX (``backend: onnx`` without
``quantize``, as the plan would declare it) against sentence-transformers on torch, on texts
no setting of either was tuned on: ``--notes`` notes of the ``short`` corpus (stdlib
docstrings and help topics, a quarter one-liners) and as many of ``phases/sample_notes`` with
a seed of their own (help topics, one to three paragraphs), cut to the model's 254 tokens as
the worker cuts them.

* agreement: the cosine of the two vectors of each text (mean, minimum, the share >= 0.999);
* speed, each text embedded once after a warm-up, texts/s: torch's best bare forms (one
  length-sorted ``encode`` on every core; the sorted texts dealt to two threads of one core
  each, the worker's streams), and the ONNX session as ``OnnxEmbedder`` runs it (one text per
  run, no padding) on one and on two streams. The ratio is ONNX's best to torch's best.

Issue 25 asks to make ONNX fp32 version 1's default if it agrees (cosine >= 0.999) and is faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from offline import quiet_offline

quiet_offline()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from bare import MODEL_PACKAGE, bench_embedder, bench_sorted, load_model  # noqa: E402
from corpus import build_corpus  # noqa: E402

from constellation.embedders.onnx import OnnxEmbedder  # noqa: E402
from constellation.preprocess import prepare  # noqa: E402
from phases.sample_notes import sample_notes  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


def held_out_texts(count: int) -> list[str]:
    short = [job.text for job in build_corpus(count)]
    notes = [note.content for note in sample_notes(count, users=50, seed=2025)]
    return short + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1000, help="texts of each of two corpora")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    model = load_model()
    with tempfile.TemporaryDirectory(prefix="bench-v1-") as tmp:
        onnx = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=Path(tmp), streams=2)
        onnx_one = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=Path(tmp), streams=1)
        started = time.perf_counter()
        onnx.embed(["export and load"])
        export_seconds = time.perf_counter() - started
        texts = [p.text or " " for p in prepare(held_out_texts(args.notes), onnx)]

        torch_vectors = np.asarray(
            model.encode(texts, batch_size=4, normalize_embeddings=True, show_progress_bar=False)
        )
        onnx_vectors = onnx.embed(texts)
        cosines = (torch_vectors * onnx_vectors).sum(axis=1)

        speed: dict[str, dict[str, Any]] = {
            "torch, one sorted call": bench_sorted(model, texts, 4),
            "torch, 2 streams": bench_sorted(model, texts, 4, streams=2),
            "onnx fp32, 1 stream": bench_embedder(onnx_one, texts, streams=1),
            "onnx fp32, 2 streams": bench_embedder(onnx, texts, streams=2),
        }
    best_torch = max(v["rate"] for k, v in speed.items() if k.startswith("torch"))
    best_onnx = max(v["rate"] for k, v in speed.items() if k.startswith("onnx"))
    results = {
        "texts": len(texts),
        "export_seconds": round(export_seconds, 1),
        "cosine_mean": float(cosines.mean()),
        "cosine_min": float(cosines.min()),
        "share_at_least_0999": float((cosines >= 0.999).mean()),
        "speed": {
            k: {"rate": v["rate"], "cpu_ms_per_text": v["cpu_ms_per_text"]}
            for k, v in speed.items()
        },
        "onnx_to_torch": best_onnx / best_torch,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{results['texts']} held-out texts; ONNX fp32 export {results['export_seconds']} s")
    print(
        f"cosine torch vs onnx fp32: mean {results['cosine_mean']:.6f}, min "
        f"{results['cosine_min']:.6f}, >= 0.999: {results['share_at_least_0999']:.1%}"
    )
    for name, row in results["speed"].items():
        print(f"{name:24} {row['rate']:8.1f} texts/s  {row['cpu_ms_per_text']:6.1f} ms CPU a text")
    print(f"onnx fp32 best / torch best: {results['onnx_to_torch']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
