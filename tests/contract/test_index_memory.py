"""The in-memory index of the unit tests (tests/fakes.py), held to the vector-index contract
that the Chroma adapters pass: a fake that drifted from the real thing would fail here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.test_index_contract import IndexContract
from tests.fakes import MemoryStore


class TestMemoryIndex(IndexContract):
    @pytest.fixture
    def store(self) -> Iterator[MemoryStore]:
        yield MemoryStore()
