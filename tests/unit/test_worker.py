"""The worker's handling of a batch, with a recording fake embedder and an in-memory index:
what is stored, skipped, dead-lettered or retried.

The queue is the real SQLite adapter (fast, on a temporary file); time is real but short.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from constellation import records
from constellation.embedders.port import LOAD_PROBE
from tests.fakes import RecordingEmbedder
from tests.unit.worker_rig import Rig, job


def test_jobs_in_records_out(rig: Rig) -> None:
    rig.send(*(job("u1", f"n{i}", f"note number {i}") for i in range(100)))
    summary = rig.worker().run(drain=True)
    assert summary.reason == "drained"
    assert len(rig.index.records) == 100
    # 100 jobs at batch size 8 make 13 batches, each one model call (two in flight at once:
    # the last, short one may reach the model first)
    assert sorted((len(b) for b in rig.embedder.batches), reverse=True) == [8] * 12 + [4]
    stored = rig.index.records[records.record_id("u1", "n7", 1)]
    assert stored.metadata == {
        "userId": "u1",
        "noteId": "n7",
        "version": 1,
        "created": 1,
        "contentHash": records.content_hash("note number 7", "fake-model"),
        "model": "fake-model",
        "sourceHash": records.source_hash("note number 7", "fake-model"),
    }
    assert stored.vector == pytest.approx(list(rig.embedder.vector("note number 7")))
    assert rig.queue.depth().total == 0


def test_the_writes_of_a_backlog_are_gathered_into_one_upsert(rig: Rig) -> None:
    """Two full batches (a backlog) are stored together, once the queue runs dry; a batch
    handled on its own is stored at once."""
    rig.send(*(job("u", f"n{i}", f"t{i}") for i in range(16)))
    rig.worker(max_concurrency=1).run(drain=True)
    assert [len(ids) for ids in rig.index.upserts] == [16]
    assert rig.queue.depth().total == 0

    rig.send(*(job("u", f"m{i}", f"t{i}") for i in range(3)))
    rig.processor.process(rig.queue.receive(max_messages=3))
    assert [len(ids) for ids in rig.index.upserts] == [16, 3]


def test_malformed_jobs_go_to_the_dead_letter_queue_with_reasons(rig: Rig) -> None:
    bad = {
        "not_json": "{oops",
        "not_an_object": "[1, 2]",
        "missing_field": json.dumps({"userId": "u", "noteId": "n", "text": "t", "created": 1}),
        "wrong_type": json.dumps(
            {"userId": "u", "noteId": "n", "text": 5, "created": 1, "version": 1}
        ),
        "empty_id": job("", "n", "t"),
        "unknown_version": job("u", "n", "t", version=9),
        "too_large": job("u", "n", "x" * 5000),
    }
    rig.send(*bad.values(), job("u", "good", "fine text"))
    rig.worker().run(drain=True)
    letters = rig.dead_letters()
    assert sorted(m.attributes["reason"] for m in letters) == sorted(bad)
    assert {m.attributes["reason"]: m.body for m in letters} == bad
    assert all(m.attributes["sourceQueue"] == "q" and m.attributes["detail"] for m in letters)
    assert list(rig.index.records) == [records.record_id("u", "good", 1)]
    assert dict(rig.stats.failed) == dict.fromkeys(bad, 1)
    assert rig.stats.processed == 1


def test_unchanged_text_skips_the_model(rig: Rig) -> None:
    rig.send(job("u", "n", "same text", created=1))
    rig.worker().run(drain=True)
    rig.send(job("u", "n", "  same   text ", created=2))  # equal after preprocessing
    rig.worker().run(drain=True)
    assert rig.embedder.texts == ["same text"]
    assert rig.stats.skipped == 1
    # the newer edit moved `created` forward without a model call
    assert rig.index.records[records.record_id("u", "n", 1)].metadata["created"] == 2


def test_older_created_never_overwrites_newer(rig: Rig) -> None:
    rig.send(job("u", "n", "newest", created=10))
    rig.worker().run(drain=True)
    rig.send(job("u", "n", "stale edit", created=5))
    rig.worker().run(drain=True)
    stored = rig.index.records[records.record_id("u", "n", 1)]
    assert stored.metadata["created"] == 10
    assert stored.metadata["contentHash"] == records.content_hash("newest", "fake-model")
    assert "stale edit" not in rig.embedder.texts


def test_out_of_order_in_one_batch_keeps_the_newest(rig: Rig) -> None:
    rig.send(
        job("u", "n", "b", created=2), job("u", "n", "c", created=3), job("u", "n", "a", created=1)
    )
    rig.worker().run(drain=True)
    assert rig.index.records[records.record_id("u", "n", 1)].metadata["created"] == 3
    assert rig.embedder.texts == ["c"]
    assert rig.queue.depth().total == 0
    assert (rig.stats.processed, rig.stats.skipped) == (1, 2)


def test_duplicate_delivery_stores_one_record(rig: Rig) -> None:
    body = job("u", "n", "twice")
    rig.send(body, body)
    rig.worker().run(drain=True)
    rig.send(body)
    rig.worker().run(drain=True)
    assert len(rig.index.records) == 1
    assert rig.embedder.texts == ["twice"]


def test_partial_batch_failure_retries_only_the_failing_job(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_retries=2, visibility=1)
    rig.embedder.fail_on = {"poison"}
    rig.send(job("u", "a", "fine a"), job("u", "p", "poison"), job("u", "b", "fine b"))
    rig.worker(visibility_timeout=1).run(drain=True)
    assert sorted(r.metadata["noteId"] for r in rig.index.records.values()) == ["a", "b"]
    (letter,) = rig.dead_letters()
    assert letter.attributes["reason"] == "model_error"
    assert "poison" in letter.attributes["detail"]
    # tried once plus max_retries retries, then dead-lettered by the worker itself
    assert letter.attributes["receiveCount"] == "3"
    assert rig.stats.failed["model_error"] == 3
    assert rig.stats.dead_lettered["model_error"] == 1


def test_index_down_deletes_nothing_and_recovers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, visibility=1)
    rig.send(*(job("u", f"n{i}", f"text {i}") for i in range(5)))
    rig.index.down = True
    rig.worker(visibility_timeout=1).run(max_messages=5)
    assert rig.queue.depth().total == 5  # all still there, invisible until their timeout
    assert rig.stats.failed["index_error"] == 5
    rig.index.down = False
    time.sleep(1.1)
    rig.worker(visibility_timeout=1).run(drain=True)
    assert len(rig.index.records) == 5
    assert rig.queue.depth().total == 0


def test_empty_text_removes_the_record_and_stores_no_vector(rig: Rig) -> None:
    rig.send(job("u", "n", "something", created=1))
    rig.worker().run(drain=True)
    rig.send(job("u", "n", " \u200b\t ", created=2), job("u", "m", "", created=1))
    rig.worker().run(drain=True)
    assert rig.index.records == {}
    assert rig.stats.empty == 2
    assert "" not in rig.embedder.texts


def test_truncation_is_counted(rig: Rig) -> None:
    rig.send(job("u", "long", " ".join(["word"] * 80)), job("u", "short", "few words"))
    rig.worker().run(drain=True)
    assert rig.stats.truncated == 1
    assert rig.embedder.texts[0] == " ".join(["word"] * 50)


def test_versions_in_one_batch_use_their_own_models(rig: Rig) -> None:
    second = RecordingEmbedder(model_id="fake-model-2")
    rig.processor.embedder_for = lambda v: rig.embedder if v == 1 else second
    rig.send(
        job("u", "n", "alpha", version=1),
        job("u", "n", "alpha", version=2),
        job("u", "m", "beta", version=2),
    )
    rig.worker().run(drain=True)
    assert rig.embedder.texts == ["alpha"]
    assert sorted(second.texts) == ["alpha", "beta"]
    v2 = rig.index.records[records.record_id("u", "n", 2)]
    assert v2.metadata["model"] == "fake-model-2"


class CountingEmbedder(RecordingEmbedder):
    """Counts the texts it was asked to cut to the model's tokens (the tokenizer's work)."""

    def __init__(self) -> None:
        super().__init__()
        self.cut: list[str] = []

    def truncate(self, texts: list[str]) -> list[tuple[str, bool]]:  # type: ignore[override]
        if texts != [LOAD_PROBE]:  # the model's load before its first batch is not a note's
            self.cut += texts
        return super().truncate(texts)


def test_an_unchanged_note_costs_no_tokenizer_no_model_and_no_write(rig: Rig) -> None:
    rig.embedder = CountingEmbedder()
    notes = [job(f"u{i % 3}", f"n{i}", f"  note   number {i}\u200b ", created=5) for i in range(20)]
    rig.send(*notes)
    rig.worker().run(drain=True)
    assert len(rig.index.records) == 20
    cut, embedded, upserts = len(rig.embedder.cut), len(rig.embedder.texts), len(rig.index.upserts)
    assert (cut, embedded) == (20, 20)

    rig.send(*notes)  # the same jobs again: a restarted backfill, a requeue
    rig.worker().run(drain=True)
    assert (len(rig.embedder.cut), len(rig.embedder.texts)) == (cut, embedded)
    assert len(rig.index.upserts) == upserts
    assert rig.stats.skipped == 20

    # the same texts as later edits: still no tokenizer nor model; `created` moves forward
    rig.send(*(job(f"u{i % 3}", f"n{i}", f"note number {i}", created=9) for i in range(20)))
    rig.worker().run(drain=True)
    assert (len(rig.embedder.cut), len(rig.embedder.texts)) == (cut, embedded)
    assert {records.created_of(r.metadata) for r in rig.index.records.values()} == {9}
    # an older edit delivered late changes nothing, a changed text is embedded
    rig.send(job("u0", "n0", "an old text", created=7), job("u1", "n1", "a new text", created=10))
    rig.worker().run(drain=True)
    assert rig.embedder.texts[embedded:] == ["a new text"]


def test_a_record_from_before_source_hashes_is_recognised_by_its_content_hash(rig: Rig) -> None:
    rig.send(job("u", "n1", "kept as it was", created=3))
    rig.worker().run(drain=True)
    (stored,) = rig.index.records.values()
    old = {k: v for k, v in stored.metadata.items() if k != records.SOURCE}
    rig.index.records[stored.id] = type(stored)(stored.id, old, stored.vector)
    rig.send(job("u", "n1", "kept as it was", created=3))
    rig.worker().run(drain=True)
    assert len(rig.embedder.texts) == 1  # cut by the tokenizer again, but not embedded
