"""The partitioned index layout, and moving an existing index to it (``index migrate``).

Against real Chroma (embedded folders, and `chroma run` for the re-partitioning under writes):
an index made before partitioning (one collection, records without the combined key) is read
as it is, flagged by ``provision``, and moved without losing or reordering a record; a move
interrupted midway resumes; writes made while it runs land in both layouts or are caught up.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from constellation import records
from constellation.errors import ConflictError
from constellation.index import relayout
from constellation.index.chroma import ChromaStore
from constellation.index.layout import INLINE, Layout, partition_name, partition_of
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import IndexSpec, VectorRecord
from constellation.plan import Plan, load_plan
from constellation.services import Services
from phases.operate.index import IndexMove, migrate_index
from phases.operate.provision import EnsureIndex
from phases.steps import run_steps
from tests.support import servers

DIM = 8
USERS = [f"user-{i}" for i in range(12)]


def vector(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


def record(user: str, note: int, created: int = 1, version: int = 1) -> VectorRecord:
    meta = {"userId": user, "noteId": f"n{note}", "version": version, "created": created}
    return VectorRecord(records.record_id(user, f"n{note}", version), vector(note), meta)


def old_index(folder: Path, name: str, count: int) -> list[VectorRecord]:
    """An index as the release before partitioning made it: one collection, no combined key."""
    store = ChromaStore(path=folder)
    client = store._client
    collection = client.create_collection(
        name,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"dimension": DIM, "created_by": "constellation"},
        embedding_function=None,
    )
    made = [record(USERS[i % len(USERS)], i, created=100 + i) for i in range(count)]
    collection.add(
        ids=[r.id for r in made],
        embeddings=[list(r.vector) for r in made],
        metadatas=[dict(r.metadata) for r in made],
    )
    store.close()
    return made


@pytest.fixture
def name() -> str:
    return f"notes-{uuid.uuid4().hex[:8]}"


def test_records_of_a_user_live_in_one_partition_and_searches_open_only_it(
    tmp_path: Path, name: str
) -> None:
    inner = ChromaStore(path=tmp_path / "index")
    store = PartitionedStore(inner, 4, user_of_id=records.user_of)
    store.create(IndexSpec(name, DIM))
    index = store.open(name)
    index.upsert([record(user, i) for i, user in enumerate(USERS * 3)])
    for number in range(4):
        part = inner.open(partition_name(name, 4, number))
        users = {r.metadata["userId"] for r in part.scan()}
        assert users == {u for u in USERS if partition_of(u, 4) == number}
    assert inner.open(name).count() == 0  # the manifest holds no records
    assert store.inspect(name).count == len(USERS) * 3  # type: ignore[union-attr]
    # one user's partition is all a search needs: with the others gone it still answers
    target = USERS[0]
    for number in range(4):
        if number != partition_of(target, 4):
            inner.delete_index(partition_name(name, 4, number))
    hits = index.query(vector(0), user_id=target, top_k=5, version=1)
    assert hits and {h.metadata["userId"] for h in hits} == {target}
    store.close()


def test_an_index_made_before_partitioning_is_read_flagged_and_moved(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "index"
    made = old_index(folder, name, 60)
    # the move below waits no grace, so readers look at the manifest every time
    store = PartitionedStore(
        ChromaStore(path=folder), 4, user_of_id=records.user_of, refresh_seconds=0
    )
    index = store.open(name)
    assert store.layout(name) == Layout(INLINE)
    user = USERS[3]
    before = index.query(vector(3), user_id=user, top_k=3, version=1)  # the old $and filter
    assert before and before[0].id == records.record_id(user, "n3", 1)

    ensure = EnsureIndex(store, IndexSpec(name, DIM, "cosine"), partitions=4)
    with pytest.raises(ConflictError, match="constellation index migrate"):
        run_steps([ensure])

    moves = migrate(tmp_path, folder, name, partitions=4, store=store)
    assert moves[0].counts.copied == 60
    assert store.layout(name) == Layout(4)
    assert store.inner.open(name).count() == 0  # emptied; it stays as the manifest
    assert index.count() == 60
    stored = index.get([r.id for r in made], include_vectors=True)
    for original in made:
        again = stored[original.id]
        assert again.metadata == original.metadata
        assert again.vector == pytest.approx(original.vector, abs=1e-6)
    after = index.query(vector(3), user_id=user, top_k=3, version=1)
    assert [h.id for h in after] == [h.id for h in before]
    assert run_steps([ensure])[0].outcome == "unchanged"
    again = migrate(tmp_path, folder, name, partitions=4, store=store)
    assert {r.outcome for r in again[0].steps} == {"unchanged"}
    store.close()


def test_an_interrupted_move_resumes_from_the_partitions_it_copied(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "index"
    store = PartitionedStore(ChromaStore(path=folder), 3, user_of_id=records.user_of)
    store.create(IndexSpec(name, DIM))
    store.open(name).upsert([record(USERS[i % 12], i, created=i + 1) for i in range(90)])

    class Crash(Exception):
        pass

    seen = 0

    def crash_after_two_pages(what: str, total: int | None, n: int) -> None:
        nonlocal seen
        if what == "copy":
            seen += 1
            if seen == 2:
                raise Crash

    plan = plan_for(tmp_path, folder, name, partitions=5)
    services = Services(plan, embedders={})
    services.__dict__["store"] = PartitionedStore(store.inner, 5, user_of_id=records.user_of)
    with pytest.raises(Crash):
        migrate_index(plan, services, grace=0, on_progress=crash_after_two_pages)
    halfway = store.layout(name)
    assert halfway is not None and halfway.moving_to == 5 and halfway.copied >= 1
    # meanwhile the index serves searches and takes writes (both layouts)
    index = store.open(name)
    index.upsert([record(USERS[0], 500, created=999)])
    assert index.get([records.record_id(USERS[0], "n500", 1)])

    moves = migrate_index(plan, services, grace=0)
    assert store.layout(name) == Layout(5)
    assert moves[0].counts.copied < 91  # the partitions copied before were not copied again
    assert store.open(name).count() == 91
    services.close()


@pytest.mark.servers
def test_writes_during_a_move_survive_it(chroma_server: servers.ManagedServer, name: str) -> None:
    """A writer keeps writing (new records, newer edits, deletions) from before the move starts
    until after the switch, while the index moves from 2 to 3 partitions; afterwards the index
    holds exactly what the writer left."""
    store = PartitionedStore(ChromaStore(url=chroma_server.url), 2, user_of_id=records.user_of)
    store.create(IndexSpec(name, DIM))
    store.open(name).upsert([record(USERS[i % 12], i, created=1) for i in range(120)])
    expected: dict[str, int] = {records.record_id(USERS[i % 12], f"n{i}", 1): 1 for i in range(120)}
    stop = threading.Event()

    def writer() -> None:
        own = PartitionedStore(ChromaStore(url=chroma_server.url), 2, user_of_id=records.user_of)
        index = own.open(name)
        step = 2
        while not stop.is_set():
            note = (step * 7) % 150
            item = record(USERS[note % 12], note, created=step)
            if step % 5 == 0 and item.id in expected:
                index.delete([item.id])
                expected.pop(item.id)
            else:
                index.upsert([item])
                expected[item.id] = step
            step += 1
        own.close()

    thread = threading.Thread(target=writer)
    thread.start()
    target = PartitionedStore(store.inner, 3, user_of_id=records.user_of)
    try:
        relayout.start(target, name, 3)
        counts = relayout.MoveCounts()
        relayout.copy(target, name, counts=counts)
        relayout.catch_up(target, name, counts=counts)
        relayout.switch(target, name)
    finally:
        stop.set()
        thread.join()
    relayout.remove(target, name)
    index = target.open(name)
    stored = {r.id: int(r.metadata["created"]) for r in index.scan()}
    assert stored == expected
    assert all(store.inner.manifest(partition_name(name, 2, n)) is None for n in range(2))
    store.delete_index(name)
    store.close()


def plan_for(tmp_path: Path, folder: Path, name: str, partitions: int) -> Plan:
    text = (
        f"data_dir: {tmp_path / 'data'}\n"
        f"index: {{name: {name}, path: {folder}, dimensions: {DIM}, partitions: {partitions}}}\n"
        f"models: {{1: {{name: fake, dimensions: {DIM}}}}}\n"
    )
    path = tmp_path / f"plan-{partitions}.yaml"
    path.write_text(text)
    return load_plan(path)


def migrate(
    tmp_path: Path, folder: Path, name: str, partitions: int, store: PartitionedStore
) -> list[IndexMove]:
    plan = plan_for(tmp_path, folder, name, partitions)
    services = Services(plan, embedders={})
    services.__dict__["store"] = store  # the test's store (one embedded system per folder)
    return migrate_index(plan, services, grace=0)
