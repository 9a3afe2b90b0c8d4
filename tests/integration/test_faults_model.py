"""Faults: the model. A text it always fails on, and batches slower than the visibility
timeout. The worker loses nothing and stores nothing twice, on the embedded default (SQLite
queue, embedded Chroma) and on SQS (a moto server) with a Chroma server.

In-process workers get the session's loaded model, wrapped to fail or to be slow, through
:class:`ModelServices`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import numpy as np
import pytest

from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.errors import ModelError
from constellation.worker import build_worker
from tests.integration.conftest import (
    Backend,
    ModelServices,
    job_body,
    provision_plan,
    receive_all,
    send,
)
from tests.integration.faults_support import assert_all_stored_once, note_text, record_ids

pytestmark = [pytest.mark.servers, pytest.mark.model]


# b. one text the model always fails on --------------------------------------------------------
class FailsOn:
    """The real model, except that any batch holding ``poison`` fails (as a model error would)."""

    def __init__(self, model: SentenceTransformerEmbedder, poison: str) -> None:
        self.model = model
        self.poison = poison
        self.model_id = model.model_id
        self.dimension = model.dimension
        self.calls: list[tuple[list[str], bool]] = []  # (texts, succeeded)
        self._lock = threading.Lock()

    def truncate(self, texts: list[str]) -> list[tuple[str, bool]]:
        return self.model.truncate(texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        failed = any(self.poison in text for text in texts)
        with self._lock:
            self.calls.append((list(texts), not failed))
        if failed:
            raise ModelError("CUDA error: an illegal memory access was encountered (test)")
        return self.model.embed(texts)


def test_a_text_the_model_always_fails_on_goes_alone_to_the_dead_letter_queue(
    backend: Backend, embedder: SentenceTransformerEmbedder
) -> None:
    plan = provision_plan(
        backend.plan({"queue": {"visibility_timeout": 1}, "consumer": {"max_retries": 2}})
    )
    poison = "This note makes the model fail every time."
    bodies = [job_body("dora", f"n{i}", note_text(i)) for i in range(7)]
    bad = job_body("dora", "poison", poison)
    bodies.insert(3, bad)
    model = FailsOn(embedder, poison)

    with ModelServices(plan, model) as services:
        send(services.queue, bodies)
        summary = build_worker(plan, services).run(drain=True)
        dead = receive_all(services.dead_letter)
        index = services.index()
        stored = index.get(record_ids(bodies))
        count = index.count()

    assert summary.reason == "drained"
    good = [b for b in bodies if b != bad]
    assert sorted(stored) == sorted(record_ids(good)) and count == 7
    # Only the poisoned job, after its first try and max_retries (2) retries, with the reason.
    assert [m.body for m in dead] == [bad]
    attributes = dead[0].attributes
    assert attributes["reason"] == "model_error"
    assert attributes["receiveCount"] == "3"
    assert attributes["sourceQueue"] == plan.queue.name
    assert "illegal memory access" in attributes["detail"]
    assert summary.stats["dead_lettered"] == {"model_error": 1}
    assert summary.stats["failed"] == {"model_error": 3}
    assert summary.stats["processed"] == 7
    # It failed inside a batch with others, and those batch-mates were embedded once, not retried.
    failing = [texts for texts, ok in model.calls if not ok]
    assert len(failing[0]) > 1
    embedded = Counter(t for texts, ok in model.calls if ok for t in texts)
    assert sorted(embedded) == sorted(json.loads(b)["text"] for b in good)
    assert set(embedded.values()) == {1}


# a slow batch keeps its messages hidden -------------------------------------------------------
class SlowModel:
    """The real model, taking ``delay`` seconds per call: longer than the visibility timeout."""

    def __init__(self, model: SentenceTransformerEmbedder, delay: float) -> None:
        self.model = model
        self.delay = delay
        self.model_id = model.model_id
        self.dimension = model.dimension
        self.embedded: Counter[str] = Counter()
        self._lock = threading.Lock()

    def truncate(self, texts: list[str]) -> list[tuple[str, bool]]:
        return self.model.truncate(texts)

    def embed(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.delay)
        with self._lock:
            self.embedded.update(texts)
        return self.model.embed(texts)


def test_a_batch_slower_than_the_visibility_timeout_is_not_delivered_twice(
    backend: Backend, embedder: SentenceTransformerEmbedder
) -> None:
    plan = provision_plan(
        backend.plan({"queue": {"visibility_timeout": 1}, "consumer": {"max_batch_size": 4}})
    )
    bodies = [job_body("gail", f"n{i}", note_text(i)) for i in range(8)]
    model = SlowModel(embedder, delay=2.5)
    with ModelServices(plan, model) as services:
        send(services.queue, bodies)
        summary = build_worker(plan, services).run(drain=True)
    # The heartbeat kept every held message hidden while its batch sat in the model, so the
    # worker's other slot never received it again: one embedding per job, nothing skipped.
    assert sorted(model.embedded) == sorted(json.loads(b)["text"] for b in bodies)
    assert set(model.embedded.values()) == {1}
    assert summary.received == 8
    assert (summary.stats["processed"], summary.stats["skipped"]) == (8, 0)
    assert_all_stored_once(plan, bodies)
