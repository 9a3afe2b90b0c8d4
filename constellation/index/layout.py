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
    def from_metadata(cls, metadata: Mapping[str, object]) -> Layout:
        moving, retired = metadata.get(MOVING_TO), metadata.get(RETIRED)
        return cls(
            _int(metadata.get(PARTITIONS), INLINE),
            _int(moving, INLINE) if moving is not None else None,
            _int(metadata.get(COPIED), 0),
            _int(retired, INLINE) if retired is not None else None,
        )


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


def _int(value: object, default: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return default
