"""The vector-index port: store, fetch and search embedding records.

Every search takes a ``user_id``: there is deliberately no way to search across users, so no
query path can return another user's notes. Embeddings are always passed in; an index never
computes one itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

MetadataValue = str | int | float | bool
#: a vector: a list of floats or a 1-d numpy array
Vector: TypeAlias = "Sequence[float] | np.ndarray[Any, Any]"


@dataclass(frozen=True)
class VectorRecord:
    """A record to upsert: id, vector and metadata (see :mod:`constellation.records`)."""

    id: str
    vector: Vector
    metadata: Mapping[str, MetadataValue]


@dataclass(frozen=True)
class StoredRecord:
    """A record as read back; ``vector`` only when asked for."""

    id: str
    metadata: Mapping[str, MetadataValue]
    vector: Vector | None = None


@dataclass(frozen=True)
class Hit:
    """One search result. ``score`` is a similarity: higher is closer (cosine: 1 - distance)."""

    id: str
    score: float
    metadata: Mapping[str, MetadataValue]


@dataclass(frozen=True)
class IndexSpec:
    """What provisioning asks for."""

    name: str
    dimension: int
    metric: str = "cosine"
    metadata_fields: Mapping[str, str] = field(default_factory=dict)
    #: values the index keeps about itself (its layout: see :mod:`constellation.index.layout`)
    manifest: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexInfo:
    """What an existing index looks like."""

    name: str
    dimension: int | None
    metric: str
    count: int
    metadata_fields: Mapping[str, str]
    location: str
    #: the technology's own id of this index (Chroma: the collection's UUID), new whenever the
    #: index is created again under the same name
    id: str | None = None
    #: the values recorded with :attr:`IndexSpec.manifest` or :meth:`VectorStore.set_manifest`
    manifest: Mapping[str, MetadataValue] = field(default_factory=dict)


@runtime_checkable
class VectorIndex(Protocol):
    """One collection of vectors with metadata."""

    name: str
    dimension: int

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id, in one call; vectors of another dimension are refused."""
        ...

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        """The stored records among ``ids`` (missing ids are simply absent)."""
        ...

    def query(
        self, vector: Vector, *, user_id: str, top_k: int = 10, version: int | None = None
    ) -> list[Hit]:
        """The ``top_k`` records of ``user_id`` nearest to ``vector`` (optionally one version)."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        ...

    def search_filter(self, user_id: str, version: int | None = None) -> str:
        """Where a search for ``user_id`` (and ``version``) runs and the filter it applies, in
        the index's own terms (``doctor`` shows what searches really do)."""
        ...

    def count(self, *, version: int | None = None, user_id: str | None = None) -> int:
        """How many records (optionally of one version and/or one user)."""
        ...

    def scan(
        self, batch_size: int = 500, include_vectors: bool = False, version: int | None = None
    ) -> Iterator[StoredRecord]:
        """Every record, in pages of ``batch_size`` (memory stays flat)."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Creates, inspects, opens and deletes indexes of one technology."""

    def inspect(self, name: str) -> IndexInfo | None:
        """The index named ``name``, or None when it does not exist."""
        ...

    def create(self, spec: IndexSpec) -> IndexInfo:
        """Create an index (which must not exist yet)."""
        ...

    def delete_index(self, name: str) -> None:
        """Delete an index and its records (a missing one is ignored)."""
        ...

    def open(self, name: str) -> VectorIndex:
        """Open an existing index; raise :class:`IndexNotFound` with a next step if missing."""
        ...

    def manifest(self, name: str) -> Mapping[str, MetadataValue] | None:
        """The index's manifest values (cheaper than :meth:`inspect`), None when it is missing."""
        ...

    def set_manifest(self, name: str, values: Mapping[str, MetadataValue]) -> None:
        """Replace the index's manifest values (its other settings stay)."""
        ...

    def close(self) -> None:
        """Release connections and locks."""
        ...
