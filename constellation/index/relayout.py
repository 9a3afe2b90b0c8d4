"""Moving an index from one layout to another while it stays in use (``index migrate``).

1. :func:`start`: the target layout's partitions are created and the manifest says
   ``moving_to``; from their next write on, writers write both layouts (the current one first).
2. :func:`copy`: every record of the current layout is copied into the target, partition by
   partition, a record only where the target has none or an older one (newer ``created``
   wins, as in the worker). The manifest counts the partitions copied, so a re-run resumes.
3. :func:`catch_up`: one more pass compares the two layouts (ids and metadata, no vectors)
   and copies what a write in flight may have left behind, and removes from the target what
   the current layout no longer has (a record deleted while its page was being copied).
4. :func:`switch`: the manifest names the target as the layout; readers follow within their
   refresh bound, writers at their next write.
5. :func:`remove`: the old layout's collections are deleted (an index laid out before
   partitioning keeps its collection, emptied, as the manifest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from constellation.errors import StateError
from constellation.index.layout import INLINE, Layout
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import IndexSpec, StoredRecord, VectorIndex, VectorRecord
from constellation.index.views import LayoutView

Advance = Callable[[int], None]
PAGE = 500
_CREATED = "created"


@dataclass
class MoveCounts:
    copied: int = 0
    caught_up: int = 0
    removed: int = 0


def start(store: PartitionedStore, name: str, target: int) -> Layout:
    """Create the target's partitions and mark the move in the manifest (idempotent)."""
    layout = _layout(store, name)
    if layout.retired is not None:  # an earlier move's leftovers go first
        remove(store, name)
        layout = _layout(store, name)
    if layout.moving_to not in (None, target):
        raise StateError(
            f"index {name} is being moved to {layout.moving_to} partitions, not {target}",
            f"finish that move with index.partitions: {layout.moving_to} in the plan",
        )
    info = store.inner.inspect(name)
    assert info is not None
    spec = IndexSpec(name, info.dimension or 0, info.metric, dict(info.metadata_fields))
    store.create_partitions(spec, target)
    if layout.moving_to is None:
        layout = Layout(layout.partitions, moving_to=target, copied=0)
        store.set_layout(name, layout)
    return layout


def copy(
    store: PartitionedStore, name: str, *, counts: MoveCounts, advance: Advance | None = None
) -> None:
    """Copy every partition of the current layout not yet copied into the target."""
    layout = _moving(store, name)
    assert layout.moving_to is not None
    target = LayoutView(store, name, layout.moving_to)
    sources = store.partitions_of(name, layout.partitions)
    for number in range(layout.copied, len(sources)):
        for page in _pages(sources[number].scan(PAGE, include_vectors=True)):
            counts.copied += _copy_newer(page, target)
            if advance:
                advance(len(page))
        layout = Layout(layout.partitions, layout.moving_to, copied=number + 1)
        store.set_layout(name, layout)


def catch_up(
    store: PartitionedStore, name: str, *, counts: MoveCounts, advance: Advance | None = None
) -> None:
    """Compare both layouts once more: copy what is missing or older, drop what is gone."""
    layout = _moving(store, name)
    assert layout.moving_to is not None
    source = LayoutView(store, name, layout.partitions)
    target = LayoutView(store, name, layout.moving_to)
    for index in source.all():
        for page in _pages(index.scan(PAGE)):
            there = target.get([r.id for r in page])
            behind = [r.id for r in page if _older(there.get(r.id), r)]
            if behind:
                full = index.get(behind, include_vectors=True)
                counts.caught_up += _copy_newer(list(full.values()), target)
            if advance:
                advance(len(page))
    gone: list[tuple[VectorIndex, list[str]]] = []
    shared = 0
    for index in target.all():
        for page in _pages(index.scan(PAGE)):
            ids = [r.id for r in page]
            kept = source.get(ids)
            shared += len(kept)
            if missing := [id_ for id_ in ids if id_ not in kept]:
                gone.append((index, missing))
    # What may go is a record copied by this move and deleted meanwhile: a few. A target with
    # more such records than this run copied and than both layouts share was not filled by
    # this move (a manifest naming the wrong layout), and its records are not ours to drop.
    removing = sum(len(ids) for _, ids in gone)
    copied = counts.copied + counts.caught_up
    if removing > copied and removing > shared:
        raise StateError(
            f"index {name}: the target layout holds {removing:,} records the current layout "
            f"({layout.describe()}) lacks, more than the {copied:,} this move copied; "
            "nothing was removed",
            "check the layouts with `constellation describe`; the manifest may name the wrong one",
        )
    for index, ids in gone:
        index.delete(ids)
        counts.removed += len(ids)


def switch(store: PartitionedStore, name: str) -> Layout:
    """Make the target the index's layout; the old one is recorded as left to remove."""
    layout = _moving(store, name)
    assert layout.moving_to is not None
    switched = Layout(layout.moving_to, retired=layout.partitions)
    store.set_layout(name, switched)
    return switched


def remove(store: PartitionedStore, name: str, advance: Advance | None = None) -> int | None:
    """Delete the collections of the retired layout (an inline one is emptied, not deleted)."""
    layout = _layout(store, name)
    old = layout.retired
    if old is None:
        return None
    if old != INLINE:
        store.delete_partitions(name, old)
    else:
        base = store.partition(name, INLINE, 0)
        while True:
            ids = [r.id for r in base.scan(PAGE)][:PAGE]
            if not ids:
                break
            base.delete(ids)
            if advance:
                advance(len(ids))
        store.forget(name, INLINE)
    store.set_layout(name, Layout(layout.partitions))
    return old


def _copy_newer(records: Sequence[StoredRecord], target: LayoutView) -> int:
    there = target.get([r.id for r in records])
    writes = [
        VectorRecord(r.id, r.vector, r.metadata)
        for r in records
        if r.vector is not None and _older(there.get(r.id), r)
    ]
    if writes:
        target.upsert(writes)
    return len(writes)


def _older(stored: StoredRecord | None, record: StoredRecord) -> bool:
    """Whether ``stored`` (in the target) is missing or older than ``record``."""
    if stored is None:
        return True
    return _created(stored) < _created(record)


def _created(record: StoredRecord) -> int:
    value = record.metadata.get(_CREATED, 0)
    return int(value) if isinstance(value, int | float) else 0


def _pages(records: Iterator[StoredRecord], size: int = PAGE) -> Iterator[list[StoredRecord]]:
    page: list[StoredRecord] = []
    for record in records:
        page.append(record)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def _layout(store: PartitionedStore, name: str) -> Layout:
    layout = store.layout(name)
    if layout is None:
        raise StateError(f"index {name} does not exist", "run `constellation provision` first")
    return layout


def _moving(store: PartitionedStore, name: str) -> Layout:
    layout = _layout(store, name)
    if layout.moving_to is None:
        raise StateError(f"index {name} is not being moved", "run `constellation index migrate`")
    return layout


def source_partitions(store: PartitionedStore, name: str) -> list[VectorIndex]:
    return store.partitions_of(name, _layout(store, name).partitions)
