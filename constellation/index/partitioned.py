"""An index split into partitions by user, behind the same vector-index port.

:class:`PartitionedStore` wraps the store of one technology (Chroma, embedded or a server) and
:class:`PartitionedIndex` routes every call to the partition of the record's or the query's
user (see :mod:`constellation.index.layout`): a search opens one small collection, a batch of
writes splits into one call per partition it touches. Callers see one index; provisioning,
``describe``, archives, repairs and model upgrades need not know the layout exists.

The layout is read from the index's manifest, never from the plan, so that every process routes
alike. Writers re-read it before every write (one cheap call): while ``index migrate`` moves the
index to another layout, they write both, the current layout first. Readers re-read it every
``refresh_seconds``, and at once when a partition they knew has gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from constellation.errors import DimensionMismatch, IndexNotFound, PartitionMissing
from constellation.index.layout import INLINE, Layout, partition_name
from constellation.index.port import (
    Hit,
    IndexInfo,
    IndexSpec,
    MetadataValue,
    StoredRecord,
    Vector,
    VectorIndex,
    VectorRecord,
    VectorStore,
)
from constellation.index.views import LayoutView


def _no_user(record_id: str) -> str | None:
    return None


class PartitionedStore:
    """A :class:`VectorStore` whose indexes are split into ``partitions`` collections by user.

    ``user_of_id`` finds the user inside a record id, so that ``get`` and ``delete`` by id go
    to one partition (an id it cannot read is looked for in every partition).
    """

    def __init__(
        self,
        inner: VectorStore,
        partitions: int,
        *,
        user_of_id: Callable[[str], str | None] = _no_user,
        refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.inner = inner
        self.partitions = partitions
        self.user_of_id = user_of_id
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._opened: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()

    # the store ---------------------------------------------------------------------------------
    def inspect(self, name: str) -> IndexInfo | None:
        """The index, with the records of every partition counted."""
        info = self.inner.inspect(name)
        if info is None or Layout.from_metadata(info.manifest, name).inline:
            return info
        return replace(info, count=self.open(name).count())

    def create(self, spec: IndexSpec) -> IndexInfo:
        """Create the partitions, then the manifest: an index exists once it is complete."""
        if self.inner.manifest(spec.name) is not None:
            return self.inner.create(spec)  # refused with the adapter's own message
        layout = Layout(self.partitions)
        self.create_partitions(spec, layout.partitions)
        return self.inner.create(replace(spec, manifest={**spec.manifest, **layout.metadata()}))

    def create_partitions(self, spec: IndexSpec, partitions: int) -> None:
        """Create whichever partitions of a ``partitions`` layout do not exist yet."""
        for number in range(partitions):
            name = partition_name(spec.name, partitions, number)
            if self.inner.manifest(name) is None:
                self.inner.create(replace(spec, name=name, manifest={}))

    def delete_index(self, name: str) -> None:
        """Delete every partition of every layout the index has, then its manifest."""
        counts = {self.partitions}
        layout = self.layout(name)
        if layout is not None:
            counts |= {layout.partitions, layout.moving_to or INLINE, layout.retired or INLINE}
        for count in sorted(counts - {INLINE}):
            self.delete_partitions(name, count)
        self.inner.delete_index(name)

    def delete_partitions(self, name: str, partitions: int) -> None:
        """Delete the collections of one layout of ``name`` (missing ones are ignored)."""
        for number in range(partitions):
            part = partition_name(name, partitions, number)
            self.inner.delete_index(part)
            with self._lock:
                self._opened.pop(part, None)

    def open(self, name: str) -> PartitionedIndex:
        """The index, routed by its manifest's layout."""
        base = self.inner.open(name)  # IndexNotFound, with the adapter's next step
        layout = self.layout(name)
        return PartitionedIndex(self, base, layout or Layout(INLINE))

    def manifest(self, name: str) -> Mapping[str, MetadataValue] | None:
        return self.inner.manifest(name)

    def set_manifest(self, name: str, values: Mapping[str, MetadataValue]) -> None:
        self.inner.set_manifest(name, values)

    def close(self) -> None:
        with self._lock:
            self._opened.clear()
        self.inner.close()

    # layouts -----------------------------------------------------------------------------------
    def layout(self, name: str) -> Layout | None:
        """The layout the manifest of ``name`` records, None when the index does not exist."""
        manifest = self.inner.manifest(name)
        return None if manifest is None else Layout.from_metadata(manifest, name)

    def set_layout(self, name: str, layout: Layout) -> None:
        """Record ``layout`` in the manifest; every process follows it from its next write."""
        self.inner.set_manifest(name, layout.metadata())

    def partition(self, name: str, partitions: int, number: int) -> VectorIndex:
        """One collection of a layout (the manifest collection itself for :data:`INLINE`)."""
        part = name if partitions == INLINE else partition_name(name, partitions, number)
        with self._lock:
            found = self._opened.get(part)
        if found is None:
            try:
                found = self.inner.open(part)
            except IndexNotFound:
                if part == name or self.inner.manifest(name) is None:
                    raise
                raise PartitionMissing(name, part) from None
            with self._lock:
                found = self._opened.setdefault(part, found)
        return found

    def missing_partitions(self, name: str) -> list[str]:
        """The partition collections the manifest's layout (and the one being moved to) names
        that do not exist: deleted outside Constellation."""
        layout = self.layout(name)
        if layout is None:
            return []
        counts = [c for c in (layout.partitions, layout.moving_to) if c]
        return [
            partition_name(name, count, number)
            for count in counts
            for number in range(count)
            if self.inner.manifest(partition_name(name, count, number)) is None
        ]

    def partitions_of(self, name: str, partitions: int) -> list[VectorIndex]:
        return [self.partition(name, partitions, n) for n in range(max(1, partitions))]

    def forget(self, name: str, partitions: int) -> None:
        """Drop the opened collections of one layout (after it was deleted or moved)."""
        with self._lock:
            for number in range(max(1, partitions)):
                part = name if partitions == INLINE else partition_name(name, partitions, number)
                self._opened.pop(part, None)


class PartitionedIndex:
    """One index over the partitions of its layout. See :class:`VectorIndex`."""

    def __init__(self, store: PartitionedStore, base: VectorIndex, layout: Layout) -> None:
        self.store = store
        self.name = base.name
        self.dimension = base.dimension
        self._layout = layout
        self._read_at = store.clock()

    @property
    def layout(self) -> Layout:
        return self._layout

    def refresh(self, force: bool = False) -> Layout:
        """The manifest's layout, read again when ``force``d or older than the refresh bound."""
        now = self.store.clock()
        if force or now - self._read_at >= self.store.refresh_seconds:
            layout = self.store.layout(self.name)
            if layout is None:
                raise IndexNotFound(
                    f"index {self.name} does not exist any more", "run `constellation provision`"
                )
            self._layout, self._read_at = layout, now
        return self._layout

    def view(self, partitions: int) -> LayoutView:
        return LayoutView(self.store, self.name, partitions)

    # writes: the current layout, then the one being moved to -----------------------------------
    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records, each in its user's partition."""
        if not records:
            return
        self._check_dimensions(records)  # all of them first: no partition half-written
        for view in self._written():
            view.upsert(records)
        if not self.dimension:
            self.dimension = len(records[0].vector)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        if ids:
            for view in self._written():
                view.delete(ids)

    # reads: the current layout ------------------------------------------------------------------
    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        """The stored records among ``ids``, each looked up in its user's partition."""
        return self.view(self.refresh().partitions).get(ids, include_vectors=include_vectors)

    def query(
        self, vector: Vector, *, user_id: str, top_k: int = 10, version: int | None = None
    ) -> list[Hit]:
        """The ``top_k`` records of ``user_id`` nearest to ``vector``: one partition's search."""
        if not user_id:
            raise ValueError("query needs a user_id: searches are always filtered by user")
        for attempt in (1, 2):
            count = self.refresh(force=attempt == 2).partitions
            try:
                return (
                    self.view(count)
                    .partition_for(user_id)
                    .query(vector, user_id=user_id, top_k=top_k, version=version)
                )
            except IndexNotFound:
                if attempt == 2:
                    raise
                self.store.forget(self.name, count)  # moved by `index migrate`: read again
        raise AssertionError("unreachable")

    def search_filter(self, user_id: str, version: int | None = None) -> str:
        """The user's partition of the current layout, and that partition's filter."""
        layout = self.refresh()
        within = self.view(layout.partitions).partition_for(user_id).search_filter(user_id, version)
        return f"{layout.describe()}: {within}"

    def count(self, *, version: int | None = None, user_id: str | None = None) -> int:
        """How many records (one partition's count for one user)."""
        view = self.view(self.refresh().partitions)
        if user_id is not None:
            return view.partition_for(user_id).count(version=version, user_id=user_id)
        return sum(index.count(version=version) for index in view.all())

    def scan(
        self, batch_size: int = 500, include_vectors: bool = False, version: int | None = None
    ) -> Iterator[StoredRecord]:
        """Every record, partition after partition, in pages of ``batch_size``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        for index in self.view(self.refresh().partitions).all():
            yield from index.scan(batch_size, include_vectors=include_vectors, version=version)

    def _written(self) -> list[LayoutView]:
        layout = self.refresh(force=True)
        counts = [layout.partitions]
        if layout.moving_to is not None:
            counts.append(layout.moving_to)
        return [self.view(count) for count in counts]

    def _check_dimensions(self, records: Sequence[VectorRecord]) -> None:
        for record in records:
            if self.dimension and len(record.vector) != self.dimension:
                raise DimensionMismatch(
                    f"index {self.name} holds {self.dimension}-dimensional vectors, "
                    f"but {record.id} has {len(record.vector)}",
                    "embed with the model the index was provisioned for, or re-provision it",
                )
