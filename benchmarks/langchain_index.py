"""LangChain's ``index()`` over Chroma with the same model and texts: issue 25's comparison.

What a team would write without Constellation: ``langchain_core.indexing.index`` with a record
manager (which skips documents whose hash it has seen) over ``langchain_chroma.Chroma`` on a
persistent client in a fresh folder, cleanup ``incremental`` keyed by each note, LangChain's
default ``batch_size`` of 100. The embedding function wraps the very model objects the bare
measurements use: torch's, encoding as ``HuggingFaceEmbeddings`` does (one ``encode`` per
batch, the plan's forward passes, normalised), and the plan's ONNX file on one session with
every core (index() embeds one batch at a time), so the only difference from our worker is
the pipeline.

Timed from the documents in hand to every one stored (no queue: LangChain has none), then the
same documents again, unchanged. Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from constellation.jobs import Job


def bench_langchain(
    encode: Callable[[list[str]], np.ndarray], jobs: Sequence[Job], *, batch_size: int = 100
) -> dict[str, Any]:
    """Index ``jobs`` with LangChain, then again unchanged: rates, CPU and what it stored.
    ``encode``: the model, normalised vectors for a list of texts."""
    import chromadb
    from chromadb.config import Settings
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import InMemoryRecordManager, index

    calls = 0

    class SameModel(Embeddings):
        """The bare benchmark's model, called as HuggingFaceEmbeddings calls it."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            nonlocal calls
            calls += 1
            vectors = encode(texts)
            return [list(map(float, vector)) for vector in vectors]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    documents = [
        Document(
            page_content=job.text,
            metadata={"user_id": job.user_id, "note_id": job.note_id, "created": job.created},
            id=f"{job.user_id}/{job.note_id}",
        )
        for job in jobs
    ]
    with tempfile.TemporaryDirectory(prefix="langchain-") as folder:
        client = chromadb.PersistentClient(
            path=folder, settings=Settings(anonymized_telemetry=False)
        )
        store = Chroma(
            collection_name="notes",
            embedding_function=SameModel(),
            client=client,
            collection_metadata={"hnsw:space": "cosine"},
        )
        manager = InMemoryRecordManager(namespace="chroma/notes")
        manager.create_schema()

        def run() -> tuple[dict[str, Any], float, float]:
            cpu = time.process_time()
            started = time.perf_counter()
            outcome = index(
                documents,
                manager,
                store,
                cleanup="incremental",
                source_id_key="note_id",
                batch_size=batch_size,
                key_encoder="sha256",  # as our content hash; SHA-1 only warns
            )
            return dict(outcome), time.perf_counter() - started, time.process_time() - cpu

        first, seconds, cpu = run()
        stored = store._collection.count()
        calls_first, calls = calls, 0
        again, again_seconds, _ = run()
    return {
        "texts": stored,
        "sent": len(documents),
        "added": first["num_added"],
        "seconds": seconds,
        "rate": stored / seconds,
        "cpu_ms_per_text": 1000 * cpu / max(stored, 1),
        "batch_size": batch_size,
        "model_calls": calls_first,
        "unchanged": {
            "sent": len(documents),
            "skipped": again["num_skipped"],
            "rate": len(documents) / again_seconds,
            "model_calls": calls,
            "records_written": again["num_added"] + again["num_updated"],
        },
    }
