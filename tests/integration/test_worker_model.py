"""Jobs in, records out, with the real model on the embedded default.

Every stored vector must be the model's own normalized embedding of the preprocessed text; the
expectation is computed here, beside the worker, with sentence-transformers' ``encode``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from constellation import Client, records
from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.jobs import Job
from constellation.plan import load_plan
from constellation.preprocess import normalize
from constellation.worker import build_worker
from tests.integration.conftest import FAST, ModelServices, provision_plan, write_plan
from tests.support.model import MODEL

pytestmark = pytest.mark.model

CREATED = 1_700_000_000_000
WORDS = [
    "garden",
    "tomato",
    "basil",
    "harvest",
    "weekend",
    "planning",
    "budget",
    "invoice",
    "travel",
    "museum",
    "recipe",
    "meeting",
    "notes",
    "project",
    "deadline",
    "family",
    "birthday",
    "library",
    "book",
    "chapter",
    "review",
]

LONG_WORDS = [
    "international",
    "information",
    "government",
    "development",
    "understanding",
    "responsibility",
    "environmental",
    "organization",
    "relationship",
]

#: text → what preprocessing must make of it (written out by hand, not computed)
MESSY = {
    "Buy milk,   eggs\tand\n\nbread.  ": "Buy milk, eggs and bread.",
    "Call\x00 mom\u200b tomorrow\x07 at\r\nnoon": "Call mom tomorrow at noon",
    "Cafe\u0301 au lait with Zoe\u0308": "Café au lait with Zoë",
}


def long_text() -> str:
    """Far more than the model's 256 tokens, with a distinctive ending past the cut."""
    body = " ".join(WORDS[i % len(WORDS)] for i in range(600))
    return f"{body} THE SECRET ENDING ABOUT VOLCANOES"


def many_characters_few_tokens() -> str:
    """About 2,600 characters but only 198 tokens (each word is one token): a limit counted in
    characters would cut it, one counted in tokens does not."""
    return " ".join(LONG_WORDS * 22)


def token_cut(text: str, model: Any) -> str:
    """The longest prefix of ``text`` that the model reads, found with its tokenizer."""
    limit = model.max_seq_length - 2  # [CLS] and [SEP] take two of the positions
    offsets = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    return text if len(offsets) <= limit else text[: offsets[limit - 1][1]]


def expected_vector(text: str, model: Any) -> np.ndarray:
    vector = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
    return np.asarray(vector, dtype=np.float64)


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST)
    provision_plan(path)
    return path


def drain(plan_path: Path, embedder: SentenceTransformerEmbedder) -> dict[str, Any]:
    plan = load_plan(plan_path)
    with ModelServices(plan, embedder) as services:
        summary = build_worker(plan, services).run(drain=True)
    assert summary.reason == "drained"
    return summary.stats


def test_stored_vectors_are_the_models_embedding_of_the_preprocessed_text(
    plan_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    model = embedder.model
    jobs = [Job("alice", f"messy-{i}", text, CREATED + i, 1) for i, text in enumerate(MESSY)]
    jobs += [
        # the same visible text as messy-2, composed instead of decomposed (NFC)
        Job("alice", "nfc", "Café au lait with Zoë", CREATED, 1),
        Job("team:alpha", "a%3Ab", "Quarterly budget review with the finance team", CREATED, 1),
        Job("bob", "long", long_text(), CREATED, 1),
        Job("bob", "wide", many_characters_few_tokens(), CREATED, 1),
        Job("bob", "blank", " \u200b\x00 \n\t", CREATED, 1),
    ]
    with Client.from_plan(plan_path) as client:
        report = client.enqueue_many(jobs)
    assert (report.sent, report.rejected) == (len(jobs), [])

    stats = drain(plan_path, embedder)

    stored_jobs = [job for job in jobs if job.note_id != "blank"]
    assert stats["processed"] == len(stored_jobs)
    assert stats["empty"] == 1  # whitespace and invisible characters only: no vector at all
    assert stats["truncated"] == 1  # only the long text: "wide" is long in characters only
    assert stats["failed"] == {}

    with ModelServices(load_plan(plan_path), embedder, write=False) as services:
        index = services.index()
        ids = [records.record_id(j.user_id, j.note_id, j.version) for j in jobs]
        stored = index.get(ids, include_vectors=True)
        assert index.count() == len(stored_jobs)
    assert set(stored) == set(ids[:-1])  # the blank note has no record

    for job in stored_jobs:
        record = stored[records.record_id(job.user_id, job.note_id, 1)]
        text = token_cut(normalize(job.text), model)
        assert record.metadata == {
            "userId": job.user_id,
            "noteId": job.note_id,
            "version": 1,
            "created": job.created,
            "contentHash": records.content_hash(text, MODEL),
            "model": MODEL,
            "sourceHash": records.source_hash(normalize(job.text), MODEL),
        }, job.note_id
        assert record.vector is not None
        assert np.linalg.norm(record.vector) == pytest.approx(1.0, abs=1e-3)
        assert cosine(record.vector, expected_vector(text, model)) >= 0.999, job.note_id

    wide = many_characters_few_tokens()
    assert len(wide) > 2000
    assert stored["bob:wide:v1"].metadata["contentHash"] == records.content_hash(wide, MODEL)
    for messy, clean in MESSY.items():
        assert normalize(messy) == clean
    # NFD and NFC spellings of one text are one text: same hash, same vector
    nfd, nfc = stored["alice:messy-2:v1"], stored["alice:nfc:v1"]
    assert nfd.metadata["contentHash"] == nfc.metadata["contentHash"]
    assert cosine(nfd.vector, nfc.vector) >= 0.9999


def test_long_text_is_cut_by_tokens_and_the_hash_covers_only_what_was_embedded(
    plan_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    model = embedder.model
    text = normalize(long_text())
    cut = token_cut(text, model)
    # the expectation itself: a strict prefix holding exactly the model's token budget
    assert text.startswith(cut) and len(cut) < len(text)
    assert "VOLCANOES" not in cut
    assert len(model.tokenizer(cut, add_special_tokens=False)["input_ids"]) == 254

    with Client.from_plan(plan_path) as client:
        client.enqueue(Job("bob", "long", long_text(), CREATED, 1))
    stats = drain(plan_path, embedder)
    assert (stats["processed"], stats["truncated"]) == (1, 1)

    with ModelServices(load_plan(plan_path), embedder, write=False) as services:
        record = services.index().get(["bob:long:v1"], include_vectors=True)["bob:long:v1"]
    assert record.metadata["contentHash"] == records.content_hash(cut, MODEL)
    assert record.metadata["contentHash"] != records.content_hash(text, MODEL)
    assert cosine(record.vector, expected_vector(cut, model)) >= 0.999


def test_redelivered_and_unchanged_jobs_store_one_record_without_the_model(
    plan_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    jobs = [
        Job("carol", f"n{i}", f"Note number {i} about {WORDS[i]}", CREATED, 1) for i in range(6)
    ]
    with Client.from_plan(plan_path) as client:
        client.enqueue_many(jobs)
        client.enqueue_many(jobs[:3])  # duplicate deliveries of the same jobs
    first = drain(plan_path, embedder)
    assert first["processed"] + first["skipped"] == 9
    assert first["processed"] == 6

    # The same text again, edited later: no model call, but `created` moves forward.
    newer = [Job(j.user_id, j.note_id, j.text, CREATED + 5, 1) for j in jobs]
    with Client.from_plan(plan_path) as client:
        client.enqueue_many(newer)
    calls: list[list[str]] = []
    original_embed = embedder.embed

    class Counting:
        model_id, dimension = embedder.model_id, embedder.dimension
        truncate = staticmethod(embedder.truncate)

        @staticmethod
        def embed(texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return original_embed(texts)

    plan = load_plan(plan_path)
    with ModelServices(plan, Counting()) as services:
        second = build_worker(plan, services).run(drain=True).stats
        index = services.index()
        assert index.count() == 6
        stored = index.get([f"carol:n{i}:v1" for i in range(6)])
    assert (second["processed"], second["skipped"], calls) == (0, 6, [])
    assert {r.metadata["created"] for r in stored.values()} == {CREATED + 5}


def test_model_streams_embed_calls_at_once_with_the_models_own_vectors(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """Calls made together run on the embedder's two streams (one torch thread each), and a
    text's vector is the same as the model's own call on every core."""
    import threading

    model = embedder.model
    texts = [" ".join(WORDS[i : i + 12]) for i in range(0, 36, 3)]
    seen: set[str] = set()
    encode = embedder._encode

    def recording(batch: list[str]) -> Any:
        seen.add(threading.current_thread().name)
        started.wait(5)  # hold the first stream so the other calls need the second one
        return encode(batch)

    started = threading.Event()
    embedder._encode = recording  # type: ignore[method-assign]
    results: dict[int, Any] = {}
    try:
        threads = [
            threading.Thread(target=lambda n=n: results.update({n: embedder.embed(texts[n::4])}))
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        threading.Timer(0.5, started.set).start()
        for thread in threads:
            thread.join(30)
    finally:
        del embedder._encode  # the instance attribute: back to the method
    assert embedder.streams == 2
    assert seen == {"model-1", "model-2"}
    for n in range(4):
        for text, vector in zip(texts[n::4], results[n], strict=True):
            assert cosine(vector, expected_vector(text, model)) >= 0.9999
