"""The vector-index contract: one suite, run against every adapter of the port.

:class:`IndexContract` holds the tests; each subclass only says how to get a store. The embedded
Chroma gets a fresh folder per test; the `chroma run` server is shared by the session, so every
test there uses a collection name of its own and deletes it afterwards.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from constellation.errors import (
    DimensionMismatch,
    IndexLocked,
    IndexNotFound,
    VectorIndexError,
)
from constellation.index import lock
from constellation.index.chroma import ChromaStore
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import (
    IndexSpec,
    MetadataValue,
    StoredRecord,
    VectorIndex,
    VectorRecord,
    VectorStore,
)
from tests.support import servers

DIM = 4
FIELDS = {"userId": "string", "noteId": "string", "version": "number"}


def record(
    user: str, note: str, vector: Sequence[float], version: int = 1, **extra: MetadataValue
) -> VectorRecord:
    """A record whose id is readable in assertions (the real id scheme lives in records.py)."""
    meta: dict[str, MetadataValue] = {"userId": user, "noteId": note, "version": version, **extra}
    return VectorRecord(id=f"{user}/{note}/v{version}", vector=vector, metadata=meta)


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


class IndexContract:
    """Behaviour every VectorStore / VectorIndex adapter must show."""

    @pytest.fixture
    def store(self) -> Iterator[VectorStore]:
        raise NotImplementedError

    @pytest.fixture
    def name(self, store: VectorStore) -> Iterator[str]:
        name = f"contract-{uuid.uuid4().hex[:12]}"
        yield name
        store.delete_index(name)

    @pytest.fixture
    def index(self, store: VectorStore, name: str) -> VectorIndex:
        store.create(IndexSpec(name=name, dimension=DIM, metric="cosine", metadata_fields=FIELDS))
        return store.open(name)

    # -- provisioning -------------------------------------------------------------------------

    def test_store_and_index_satisfy_the_ports(
        self, store: VectorStore, index: VectorIndex
    ) -> None:
        assert isinstance(store, VectorStore)
        assert isinstance(index, VectorIndex)
        assert index.dimension == DIM

    def test_missing_index_inspects_as_none_and_open_says_provision(
        self, store: VectorStore, name: str
    ) -> None:
        assert store.inspect(name) is None
        with pytest.raises(IndexNotFound) as caught:
            store.open(name)
        assert name in str(caught.value)
        assert "constellation provision" in str(caught.value)

    def test_create_records_dimension_metric_and_fields(
        self, store: VectorStore, name: str
    ) -> None:
        created = store.create(IndexSpec(name=name, dimension=DIM, metadata_fields=FIELDS))
        info = store.inspect(name)
        assert info == created
        assert info is not None
        assert (info.name, info.dimension, info.metric, info.count) == (name, DIM, "cosine", 0)
        assert dict(info.metadata_fields) == FIELDS
        assert info.location
        assert info.id

    def test_an_index_created_again_has_a_new_id(self, store: VectorStore, name: str) -> None:
        first = store.create(IndexSpec(name=name, dimension=DIM))
        store.delete_index(name)
        again = store.create(IndexSpec(name=name, dimension=DIM))
        assert first.id and again.id and first.id != again.id

    def test_creating_an_existing_index_is_refused(
        self, store: VectorStore, index: VectorIndex
    ) -> None:
        with pytest.raises(VectorIndexError, match="already exists"):
            store.create(IndexSpec(name=index.name, dimension=DIM))

    def test_delete_index_removes_it_and_ignores_a_missing_one(
        self, store: VectorStore, index: VectorIndex
    ) -> None:
        store.delete_index(index.name)
        assert store.inspect(index.name) is None
        store.delete_index(index.name)

    # -- writing ------------------------------------------------------------------------------

    def test_upsert_is_idempotent_and_latest_metadata_wins(self, index: VectorIndex) -> None:
        index.upsert([record("alice", "n1", unit(1, 0, 0, 0), created=1)])
        index.upsert([record("alice", "n1", unit(0, 1, 0, 0), created=2)])
        index.upsert([record("alice", "n1", unit(0, 1, 0, 0), created=2)])
        assert index.count() == 1
        stored = index.get(["alice/n1/v1"], include_vectors=True)["alice/n1/v1"]
        assert stored.metadata["created"] == 2
        assert stored.vector == pytest.approx(unit(0, 1, 0, 0))

    def test_same_id_twice_in_one_call_keeps_the_later_record(self, index: VectorIndex) -> None:
        index.upsert(
            [
                record("alice", "n1", unit(1, 0, 0, 0), created=1),
                record("alice", "n1", unit(1, 0, 0, 0), created=2),
            ]
        )
        assert index.count() == 1
        assert index.get(["alice/n1/v1"])["alice/n1/v1"].metadata["created"] == 2

    def test_vectors_of_another_dimension_are_refused_before_writing(
        self, index: VectorIndex
    ) -> None:
        good = record("alice", "ok", unit(1, 0, 0, 0))
        with pytest.raises(DimensionMismatch, match="4-dimensional"):
            index.upsert([good, record("alice", "bad", [1.0, 0.0, 0.0])])
        assert index.count() == 0
        with pytest.raises(DimensionMismatch):
            index.query([1.0] * (DIM + 1), user_id="alice")

    def test_numpy_vectors_are_accepted(self, index: VectorIndex) -> None:
        # embedders return numpy arrays, which typing does not count as Sequence[float]
        stored = np.array(unit(1, 2, 3, 4), dtype=np.float32)
        index.upsert([record("alice", "n1", stored)])  # type: ignore[arg-type]
        hits = index.query(np.array(unit(1, 2, 3, 4)), user_id="alice", top_k=1)  # type: ignore[arg-type]
        assert [hit.id for hit in hits] == ["alice/n1/v1"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)

    def test_delete_removes_records_and_ignores_missing_ids(self, index: VectorIndex) -> None:
        index.upsert(
            [record("alice", "n1", unit(1, 0, 0, 0)), record("alice", "n2", unit(0, 1, 0, 0))]
        )
        index.delete(["alice/n1/v1", "nobody/none/v1"])
        index.delete([])
        assert set(index.get(["alice/n1/v1", "alice/n2/v1"])) == {"alice/n2/v1"}
        assert index.count() == 1

    # -- reading ------------------------------------------------------------------------------

    def test_get_with_and_without_vectors(self, index: VectorIndex) -> None:
        index.upsert([record("alice", "n1", unit(1, 1, 0, 0), created=7)])
        plain = index.get(["alice/n1/v1", "missing"])
        assert list(plain) == ["alice/n1/v1"]
        assert plain["alice/n1/v1"] == StoredRecord(
            id="alice/n1/v1",
            metadata={"userId": "alice", "noteId": "n1", "version": 1, "created": 7},
            vector=None,
        )
        full = index.get(["alice/n1/v1"], include_vectors=True)["alice/n1/v1"]
        assert full.vector == pytest.approx(unit(1, 1, 0, 0))
        assert index.get([]) == {}

    def test_query_never_returns_another_users_records(self, index: VectorIndex) -> None:
        target = unit(1, 0, 0, 0)
        index.upsert(
            [record("bob", f"b{i}", target) for i in range(5)]  # bob's are exactly on target
            + [record("alice", "far", unit(0, 0, 1, 1)), record("alice", "near", unit(1, 1, 0, 0))]
        )
        hits = index.query(target, user_id="alice", top_k=3)
        assert [hit.id for hit in hits] == ["alice/near/v1", "alice/far/v1"]
        assert all(hit.metadata["userId"] == "alice" for hit in hits)
        assert index.query(target, user_id="carol", top_k=3) == []

    def test_query_needs_a_user(self, index: VectorIndex) -> None:
        with pytest.raises(ValueError, match="user_id"):
            index.query(unit(1, 0, 0, 0), user_id="")

    def test_query_filters_by_version(self, index: VectorIndex) -> None:
        index.upsert(
            [
                record("alice", "n1", unit(1, 0, 0, 0), version=1),
                record("alice", "n1", unit(1, 0, 0, 0), version=2),
            ]
        )
        hits = index.query(unit(1, 0, 0, 0), user_id="alice", version=2)
        assert [hit.id for hit in hits] == ["alice/n1/v2"]
        assert len(index.query(unit(1, 0, 0, 0), user_id="alice")) == 2

    def test_query_scores_are_ordered_and_identical_vector_scores_one(
        self, index: VectorIndex
    ) -> None:
        vectors = [unit(1, 0, 0, 0), unit(1, 1, 0, 0), unit(1, 1, 1, 0), unit(0, 0, 0, 1)]
        index.upsert([record("alice", f"n{i}", vector) for i, vector in enumerate(vectors)])
        hits = index.query(unit(1, 0, 0, 0), user_id="alice", top_k=50)  # more than alice has
        assert [hit.id for hit in hits] == [f"alice/n{i}/v1" for i in range(4)]
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(1.0, abs=1e-5)
        assert scores[1] == pytest.approx(math.sqrt(0.5), abs=1e-4)
        assert scores[3] == pytest.approx(0.0, abs=1e-5)
        assert hits[0].metadata["noteId"] == "n0"

    def test_l2_index_scores_higher_for_closer(self, store: VectorStore) -> None:
        name = f"contract-l2-{uuid.uuid4().hex[:8]}"
        try:
            assert store.create(IndexSpec(name=name, dimension=DIM, metric="l2")).metric == "l2"
            index = store.open(name)
            index.upsert(
                [record("alice", "same", [1, 0, 0, 0]), record("alice", "far", [3, 0, 0, 0])]
            )
            hits = index.query([1, 0, 0, 0], user_id="alice")
            assert [hit.id for hit in hits] == ["alice/same/v1", "alice/far/v1"]
            assert hits[0].score == pytest.approx(0.0, abs=1e-5)
            assert hits[1].score < hits[0].score
        finally:
            store.delete_index(name)

    def test_count_total_by_version_and_by_user(self, index: VectorIndex) -> None:
        index.upsert(
            [record("alice", f"a{i}", unit(1, i, 0, 0), version=1) for i in range(3)]
            + [record("alice", "a0", unit(1, 0, 0, 0), version=2)]
            + [record("bob", f"b{i}", unit(0, 1, i, 0), version=2) for i in range(2)]
        )
        assert index.count() == 6
        assert index.count(version=1) == 3
        assert index.count(version=2) == 3
        assert index.count(user_id="alice") == 4
        assert index.count(user_id="bob", version=2) == 2
        assert index.count(user_id="bob", version=1) == 0

    def test_scan_pages_through_every_record(self, index: VectorIndex) -> None:
        index.upsert(
            [record("u", f"n{i:02}", unit(1, i, 0, 0), version=1 + i % 2) for i in range(11)]
        )
        scanned = list(index.scan(batch_size=4))
        assert sorted(r.id for r in scanned) == sorted(f"u/n{i:02}/v{1 + i % 2}" for i in range(11))
        assert all(r.vector is None for r in scanned)
        with_vectors = list(index.scan(batch_size=3, include_vectors=True, version=2))
        assert sorted(r.id for r in with_vectors) == [f"u/n{i:02}/v2" for i in range(1, 11, 2)]
        assert all(r.vector is not None and len(r.vector) == DIM for r in with_vectors)
        assert list(index.scan(batch_size=4, version=9)) == []


def _open_for_writing(path: str) -> str:
    """Run in another process: try to open the embedded index for writing."""
    try:
        store = ChromaStore(path=Path(path), write=True)
    except IndexLocked as exc:
        return f"locked: {exc}"
    store.close()
    return "opened"


class TestEmbeddedChroma(IndexContract):
    """PersistentClient on a fresh folder per test."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ChromaStore]:
        store = ChromaStore(path=tmp_path / "index")
        yield store
        store.close()

    @pytest.fixture
    def name(self) -> str:
        return f"contract-{uuid.uuid4().hex[:12]}"  # the folder is thrown away with tmp_path

    def test_location_is_the_folder(
        self, store: ChromaStore, index: VectorIndex, tmp_path: Path
    ) -> None:
        info = store.inspect(index.name)
        assert info is not None
        assert info.location == str((tmp_path / "index").resolve())

    def test_writer_lock_is_per_process(
        self, store: ChromaStore, index: VectorIndex, tmp_path: Path
    ) -> None:
        folder = tmp_path / "index"
        second = ChromaStore(path=folder)  # the same process shares the lock
        assert second.inspect(index.name) is not None
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            refused = pool.apply(_open_for_writing, (str(folder),))
            assert refused.startswith("locked: ")
            assert str(folder.resolve()) in refused
            assert f"in use by another process (pid {os.getpid()})" in refused
            assert f"chroma run --path {folder.resolve()}" in refused
            assert "index.url" in refused
            # a reader in this process needs no lock, and does not hold it
            ChromaStore(path=folder, write=False).close()
            store.close()
            assert lock.holds(folder)  # `second` still holds it
            second.close()
            assert not lock.holds(folder)
            assert pool.apply(_open_for_writing, (str(folder),)) == "opened"

    def test_closed_store_refuses_work(self, store: ChromaStore, name: str) -> None:
        store.close()
        store.close()  # idempotent
        with pytest.raises(VectorIndexError, match="closed"):
            store.inspect(name)


@pytest.mark.servers
class TestChromaServer(IndexContract):
    """HttpClient against the session's `chroma run`."""

    @pytest.fixture
    def store(self, chroma_server: servers.ManagedServer) -> Iterator[ChromaStore]:
        store = ChromaStore(url=chroma_server.url)
        yield store
        store.close()

    def test_location_is_the_url(
        self, store: ChromaStore, index: VectorIndex, chroma_server: servers.ManagedServer
    ) -> None:
        info = store.inspect(index.name)
        assert info is not None
        assert info.location == chroma_server.url

    def test_unreachable_server_names_the_url(self) -> None:
        url = f"http://127.0.0.1:{servers.free_port()}"
        with pytest.raises(VectorIndexError) as caught:
            ChromaStore(url=url)
        message = str(caught.value)
        assert f"Chroma server at {url} is unreachable" in message
        assert "chroma run" in message and "index.url" in message
        assert isinstance(caught.value.__cause__, Exception)

    def test_an_auth_token_is_accepted(self, chroma_server: servers.ManagedServer) -> None:
        # the test server runs without auth; this checks the client side of token auth is wired
        with ChromaStore(url=chroma_server.url + "/", auth_token="test-token-123") as store:
            assert store.inspect(f"contract-{uuid.uuid4().hex[:12]}") is None

    def test_a_url_that_is_not_a_server_address_is_refused(self) -> None:
        with pytest.raises(VectorIndexError, match="http://host:port"):
            ChromaStore(url="127.0.0.1:8000")


def contract_user(record_id: str) -> str | None:
    """The user inside this suite's ids (``user/note/vN``), as records.user_of reads ours."""
    parts = record_id.split("/")
    return parts[0] if len(parts) == 3 else None


#: few enough partitions that the suite's users share some and spread over others
PARTITIONS = 3


class TestPartitionedEmbedded(IndexContract):
    """The partitioned layout over an embedded Chroma folder."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[PartitionedStore]:
        store = PartitionedStore(
            ChromaStore(path=tmp_path / "index"), PARTITIONS, user_of_id=contract_user
        )
        yield store
        store.close()

    @pytest.fixture
    def name(self) -> str:
        return f"contract-{uuid.uuid4().hex[:12]}"


@pytest.mark.servers
class TestPartitionedServer(IndexContract):
    """The partitioned layout over the session's `chroma run`."""

    @pytest.fixture
    def store(self, chroma_server: servers.ManagedServer) -> Iterator[PartitionedStore]:
        inner = ChromaStore(url=chroma_server.url)
        store = PartitionedStore(inner, PARTITIONS, user_of_id=contract_user)
        yield store
        store.close()


def test_importing_the_adapter_does_not_import_chromadb() -> None:
    code = "import sys, constellation.index.chroma; sys.exit('chromadb' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
