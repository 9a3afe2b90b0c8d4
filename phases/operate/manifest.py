"""``index repair``: set a damaged index manifest back from the partitions the index has.

The manifest (see :mod:`constellation.index.layout`) is the only record of an index's layout;
a value no layout has stops every command that reads the index (``ManifestDamaged``) rather
than letting it guess. The layout can be told again from the collections themselves: every
partition of the plan's count present means that layout; none of them, and records in the
manifest collection itself, means the layout from before partitioning. Anything else is not
guessed. No record is read into another layout, moved or removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation.errors import ConflictError, ManifestDamaged
from constellation.index.layout import INLINE, Layout, partition_name
from constellation.index.partitioned import PartitionedStore
from constellation.plan import Plan
from constellation.services import Services
from phases.operate.index import index_names


@dataclass(frozen=True)
class ManifestRepair:
    """One index's manifest: what was wrong, and the layout it records now."""

    index: str
    damage: str
    layout: str
    changed: bool


def repair_manifests(
    plan: Plan, services: Services, *, dry_run: bool = False
) -> list[ManifestRepair]:
    """Set damaged index manifests back from the partitions each index has."""
    store = services.store
    repairs = []
    for name in index_names(plan):
        try:
            layout = store.layout(name)
        except ManifestDamaged as exc:
            found = _layout_found(store, name, plan.index.partitions)
            if not dry_run:
                store.set_layout(name, found)
            repairs.append(ManifestRepair(name, exc.message, found.describe(), True))
            continue
        shown = layout.describe() if layout else "not provisioned"
        repairs.append(ManifestRepair(name, "", shown, False))
    return repairs


def _layout_found(store: PartitionedStore, name: str, planned: int) -> Layout:
    present = [
        store.inner.manifest(partition_name(name, planned, n)) is not None for n in range(planned)
    ]
    if all(present):
        return Layout(planned)
    if not any(present) and store.inner.open(name).count() > 0:
        return Layout(INLINE)
    raise ConflictError(
        f"cannot tell the layout of index {name}: {sum(present)} of the plan's {planned} "
        "partitions exist; nothing was changed",
        "set index.partitions in the plan to the count the index was laid out with, and run "
        "`constellation index repair` again",
    )
