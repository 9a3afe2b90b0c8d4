"""The in-memory index of the unit tests (tests/fakes.py), held to the vector-index contract
that the Chroma adapters pass: a fake that drifted from the real thing would fail here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from constellation.index.partitioned import PartitionedStore
from tests.contract.test_index_contract import IndexContract, contract_user
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
