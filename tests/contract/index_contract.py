"""The vector-index port's contract: one suite, run against every adapter.

:class:`IndexContract` holds the behaviour every VectorStore / VectorIndex adapter must show;
each adapter's test module (``test_index_chroma.py``: embedded, `chroma run`, and both
partitioned; ``test_index_memory.py``: the unit tests' fake) subclasses it and provides a
``store`` fixture (and a ``name`` one where collections outlive a test). This module is not
named ``test_*`` so that pytest does not collect the base class on its own; ``conftest.py`` has
pytest rewrite its asserts all the same.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from constellation.errors import DimensionMismatch, IndexNotFound, VectorIndexError
from constellation.index.port import (
    IndexSpec,
    MetadataValue,
    StoredRecord,
    VectorIndex,
    VectorRecord,
    VectorStore,
)

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

    def test_the_search_filter_names_the_user_and_the_version(self, index: VectorIndex) -> None:
        """What ``doctor`` shows of a search: the real user and version, as the index asks."""
        described = index.search_filter("alice-7", 3)
        assert "alice-7" in described and "3" in described.replace("alice-7", "")
        assert "bob" in index.search_filter("bob", None)

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


def contract_user(record_id: str) -> str | None:
    """The user inside this suite's ids (``user/note/vN``), as records.user_of reads ours."""
    parts = record_id.split("/")
    return parts[0] if len(parts) == 3 else None


#: few enough partitions that the suite's users share some and spread over others
PARTITIONS = 3
