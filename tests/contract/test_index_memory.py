"""The in-memory index of the unit tests (tests/fakes.py), held to the vector-index contract
that the Chroma adapters pass: a fake that drifted from the real thing would fail here."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from constellation.index.layout import partition_of
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import StoredRecord
from constellation.index.views import LayoutView
from tests.contract.index_contract import IndexContract, contract_user
from tests.fakes import MemoryStore


class TestMemoryIndex(IndexContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        yield MemoryStore()


class TestPartitionedMemoryIndex(IndexContract):
    """The partitioned layout over the in-memory store: routing needs nothing of Chroma."""

    @pytest.fixture
    def store(self) -> Iterator[PartitionedStore]:
        yield PartitionedStore(MemoryStore(), 3, user_of_id=contract_user)


class _Waiting:
    """A partition whose read waits until another partition's read has started as well."""

    def __init__(self, number: int, barrier: threading.Barrier) -> None:
        self.number = number
        self.barrier = barrier

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        self.barrier.wait()  # BrokenBarrierError after its timeout if reads ran one by one
        return {i: StoredRecord(i, {"partition": self.number}) for i in ids}


class _Store:
    def __init__(self, barrier: threading.Barrier) -> None:
        self.parts = [_Waiting(n, barrier) for n in range(8)]

    def partition(self, name: str, partitions: int, number: int) -> Any:
        return self.parts[number]

    def partitions_of(self, name: str, partitions: int) -> list[Any]:
        return list(self.parts)

    def user_of_id(self, record_id: str) -> str | None:
        return contract_user(record_id)


def test_reads_of_several_partitions_run_at_once() -> None:
    """A get over several partitions reads them concurrently (Chroma lets go of the GIL in a
    read), and still returns every record in the order asked."""
    view = LayoutView(_Store(threading.Barrier(2, timeout=5)), "notes", 8)
    users = {partition_of(f"user-{n}", 8): f"user-{n}" for n in range(40)}
    first, second = sorted(users)[:2]
    ids = [f"{users[first]}/a/v1", f"{users[second]}/b/v1"]
    found = view.get(ids)
    assert list(found) == ids
    assert [r.metadata["partition"] for r in found.values()] == [first, second]
