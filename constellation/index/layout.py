"""The index layout: which collection holds a user's records.

A search filtered on one user costs what the collection it runs in costs, not what the user's
notes cost: on one Chroma collection of 100,000 records a ``userId`` filter takes about 130 ms
(``benchmarks/query_scale.py``). So an index is split into ``partitions`` collections by a
stable hash of the userId: a user's records all live in one partition, and a search opens that
one small collection. The index's own name is its *manifest*: an empty collection whose metadata
records the layout, so every process routes the same way whatever its plan says.

A layout written before partitioning has no ``partitions`` in its manifest: its records live in
the named collection itself (:data:`INLINE`). ``constellation index migrate`` moves it, or a
layout of another partition count, to the plan's layout; while it runs the manifest names the
layout being moved to (``moving_to``) and writers write both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from constellation.errors import ManifestDamaged
from constellation.index.port import MetadataValue

#: the partition count of a layout whose records live in the manifest collection itself
INLINE = 0
#: manifest metadata keys
PARTITIONS, MOVING_TO, COPIED, RETIRED = "partitions", "moving_to", "copied", "retired"


@dataclass(frozen=True)
class Layout:
    """How one index is laid out: ``partitions`` collections (or :data:`INLINE`); the layout
    an ``index migrate`` is moving it to, with the source partitions already copied; and the
    layout it moved from, until that one's collections are removed."""

    partitions: int
    moving_to: int | None = None
    copied: int = 0
    retired: int | None = None

    @property
    def inline(self) -> bool:
        return self.partitions == INLINE

    def describe(self) -> str:
        text = layout_name(self.partitions)
        if self.moving_to is not None:
            text += f", moving to {layout_name(self.moving_to)}"
        if self.retired is not None:
            text += f", {layout_name(self.retired)} left to remove"
        return text

    def metadata(self) -> dict[str, MetadataValue]:
        """The manifest metadata that records this layout."""
        values: dict[str, MetadataValue] = {}
        if not self.inline:
            values[PARTITIONS] = self.partitions
        if self.moving_to is not None:
            values[MOVING_TO] = self.moving_to
            values[COPIED] = self.copied
        if self.retired is not None:
            values[RETIRED] = self.retired
        return values

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object], index: str = "") -> Layout:
        """The layout a manifest records; :class:`ManifestDamaged` naming the key when a value
        is no layout's (never read as "before partitioning": a guessed layout reads nothing,
        and ``index migrate`` would remove every record it did not copy)."""
        partitions = _count(metadata, PARTITIONS, index, least=1, default=INLINE)
        moving = _count(metadata, MOVING_TO, index, least=1, default=None)
        retired = _count(metadata, RETIRED, index, least=INLINE, default=None)
        copied = _count(metadata, COPIED, index, least=0, default=0)
        assert copied is not None and partitions is not None
        if moving is None and COPIED in metadata:
            raise ManifestDamaged(index, f"{COPIED} is set but {MOVING_TO} is not")
        if moving is not None and copied > max(partitions, 1):
            raise ManifestDamaged(
                index, f"{COPIED} is {copied}, more than the {max(partitions, 1)} partitions"
            )
        if moving == partitions:
            raise ManifestDamaged(index, f"{MOVING_TO} is its own layout ({partitions})")
        return cls(partitions, moving, copied, retired)


def layout_name(partitions: int) -> str:
    if partitions == INLINE:
        return "one collection (before partitioning)"
    return "1 partition" if partitions == 1 else f"{partitions} partitions by user"


def partition_of(user_id: str, partitions: int) -> int:
    """The partition of ``user_id``: a stable hash (the same in every process and release)."""
    if partitions <= 1:
        return 0
    digest = hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_name(index: str, partitions: int, number: int) -> str:
    """The collection of partition ``number`` out of ``partitions`` of ``index``.

    The count is part of the name so that two layouts of one index can exist side by side while
    ``index migrate`` moves records from one to the other.
    """
    width = len(str(partitions - 1))
    return f"{index}-{partitions}p{number:0{width}d}"


def _count(
    metadata: Mapping[str, object], key: str, index: str, *, least: int, default: int | None
) -> int | None:
    """A whole number of at least ``least`` under ``key``, ``default`` when absent."""
    if key not in metadata or metadata[key] is None:
        return default
    value = metadata[key]
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == int(value)
        and value >= least
    ):
        return int(value)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return _damaged(index, f"{key} is {shown}, not a whole number of {least} or more")


def _damaged(index: str, problem: str) -> int:
    raise ManifestDamaged(index or "(unnamed)", problem)
