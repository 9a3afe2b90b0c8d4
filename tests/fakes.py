"""Test fakes that hold state and record what they were asked (for unit tests of our logic).

Adapters are never tested only against these: the contract suites run the real SQLite queue,
SQS on a moto server, embedded Chroma and `chroma run`, and integration tests the real model.
The in-memory index runs through the same index contract (tests/contract/test_index_memory.py),
so it cannot drift from what the real adapters do.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from constellation.errors import DimensionMismatch, IndexNotFound, ModelError, VectorIndexError
from constellation.index.port import (
    Hit,
    IndexInfo,
    IndexSpec,
    MetadataValue,
    StoredRecord,
    Vector,
    VectorIndex,
    VectorRecord,
)


class RecordingEmbedder:
    """Deterministic unit vectors from each text's hash; records every batch it embeds."""

    def __init__(
        self,
        model_id: str = "fake-model",
        dimension: int = 8,
        max_tokens: int = 50,
        fail_on: Sequence[str] = (),
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.fail_on = set(fail_on)
        self.batches: list[list[str]] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=self.dimension).astype(np.float32)
        return v / np.linalg.norm(v)

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        # One "token" per word.
        result = []
        for text in texts:
            words = text.split(" ")
            result.append((" ".join(words[: self.max_tokens]), len(words) > self.max_tokens))
        return result

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
            self.batches.append(list(texts))
        try:
            bad = self.fail_on.intersection(texts)
            if bad:
                raise ModelError(f"cannot embed {sorted(bad)[0]!r}")
            return np.stack([self.vector(t) for t in texts])
        finally:
            with self._lock:
                self.concurrent -= 1

    @property
    def texts(self) -> list[str]:
        return [t for batch in self.batches for t in batch]


class MemoryIndex:
    """A VectorIndex in a dict; ``down = True`` makes every call fail like an unreachable server.

    Scores as the Chroma adapter does: cosine similarity, or the negated squared distance for
    ``l2``. ``upserts`` records the ids of every call.
    """

    def __init__(
        self,
        name: str = "test-index",
        dimension: int = 8,
        *,
        metric: str = "cosine",
        metadata_fields: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.metadata_fields = dict(metadata_fields or {})
        self.id = uuid.uuid4().hex
        self.records: dict[str, StoredRecord] = {}
        self.down = False
        self.upserts: list[list[str]] = []
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise VectorIndexError("index unreachable (test)")

    def _checked(self, vector: Vector, what: str) -> list[float]:
        values = [float(x) for x in vector]
        if len(values) != self.dimension:
            raise DimensionMismatch(
                f"index {self.name} holds {self.dimension}-dimensional vectors, "
                f"but {what} has {len(values)}"
            )
        return values

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        self._check()
        # Every vector is checked before anything is written.
        vectors = [self._checked(r.vector, f"record {r.id}") for r in records]
        with self._lock:
            self.upserts.append([r.id for r in records])
            for r, vector in zip(records, vectors, strict=True):
                self.records[r.id] = StoredRecord(r.id, dict(r.metadata), vector)

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        self._check()
        with self._lock:
            found = {i: self.records[i] for i in ids if i in self.records}
        if include_vectors:
            return found
        return {i: StoredRecord(r.id, r.metadata) for i, r in found.items()}

    def _score(self, query: np.ndarray, stored: Vector) -> float:
        v = np.asarray(stored, dtype=np.float64)
        if self.metric == "l2":
            return -float(np.sum((query - v) ** 2))
        norms = float(np.linalg.norm(query) * np.linalg.norm(v)) or 1.0
        return float(np.dot(query, v)) / norms

    def query(
        self, vector: Vector, *, user_id: str, top_k: int = 10, version: int | None = None
    ) -> list[Hit]:
        self._check()
        if not user_id:
            raise ValueError("user_id is required")
        q = np.asarray(self._checked(vector, "the query"), dtype=np.float64)
        hits = []
        with self._lock:
            stored = list(self.records.values())
        for r in stored:
            if r.metadata["userId"] != user_id:
                continue
            if version is not None and r.metadata["version"] != version:
                continue
            assert r.vector is not None
            hits.append(Hit(r.id, self._score(q, r.vector), r.metadata))
        return sorted(hits, key=lambda h: -h.score)[:top_k]

    def delete(self, ids: Sequence[str]) -> None:
        self._check()
        with self._lock:
            for i in ids:
                self.records.pop(i, None)

    def search_filter(self, user_id: str, version: int | None = None) -> str:
        return f"userId = {user_id}" + ("" if version is None else f" and version = {version}")

    def count(self, *, version: int | None = None, user_id: str | None = None) -> int:
        self._check()
        return sum(
            1
            for r in list(self.records.values())
            if (version is None or r.metadata["version"] == version)
            and (user_id is None or r.metadata["userId"] == user_id)
        )

    def scan(
        self, batch_size: int = 500, include_vectors: bool = False, version: int | None = None
    ) -> Iterator[StoredRecord]:
        self._check()
        for r in list(self.records.values()):
            if version is None or r.metadata["version"] == version:
                yield r if include_vectors else StoredRecord(r.id, r.metadata)


class MemoryStore:
    """A VectorStore of :class:`MemoryIndex` indexes, by name."""

    location = "memory"

    def __init__(self) -> None:
        self.indexes: dict[str, MemoryIndex] = {}
        self.manifests: dict[str, dict[str, MetadataValue]] = {}

    def inspect(self, name: str) -> IndexInfo | None:
        index = self.indexes.get(name)
        if index is None:
            return None
        return IndexInfo(
            name,
            index.dimension,
            index.metric,
            index.count(),
            dict(index.metadata_fields),
            self.location,
            index.id,
            dict(self.manifests.get(name, {})),
        )

    def create(self, spec: IndexSpec) -> IndexInfo:
        if spec.name in self.indexes:
            raise VectorIndexError(f"index {spec.name} already exists in {self.location}")
        self.indexes[spec.name] = MemoryIndex(
            spec.name, spec.dimension, metric=spec.metric, metadata_fields=spec.metadata_fields
        )
        self.manifests[spec.name] = dict(spec.manifest)
        info = self.inspect(spec.name)
        assert info is not None
        return info

    def delete_index(self, name: str) -> None:
        self.indexes.pop(name, None)
        self.manifests.pop(name, None)

    def manifest(self, name: str) -> dict[str, MetadataValue] | None:
        return dict(self.manifests[name]) if name in self.indexes else None

    def set_manifest(self, name: str, values: Mapping[str, MetadataValue]) -> None:
        self.open(name)  # IndexNotFound when missing
        self.manifests[name] = dict(values)

    def open(self, name: str) -> VectorIndex:
        if name not in self.indexes:
            raise IndexNotFound(
                f"no index {name} in {self.location}", "run `constellation provision` first"
            )
        return self.indexes[name]

    def close(self) -> None:
        pass
