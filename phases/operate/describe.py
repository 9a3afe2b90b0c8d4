"""``describe``: what the plan's queues and index look like right now."""

from __future__ import annotations

from dataclasses import dataclass, field

from constellation.index.layout import Layout
from constellation.index.port import IndexInfo
from constellation.plan import Plan
from constellation.queues.port import QueueInfo
from constellation.readback import REBUILD, Readback, read_back
from constellation.services import Services


@dataclass(frozen=True)
class QueueReport:
    role: str
    name: str
    info: QueueInfo | None


@dataclass(frozen=True)
class IndexReport:
    name: str
    info: IndexInfo | None
    #: record count per model version stored in this index
    by_version: dict[int, int] = field(default_factory=dict)
    #: how its records are spread over collections (see constellation.index.layout)
    layout: str = ""
    #: per version with records: a sample query that must find its sampled record
    readback: list[Readback] = field(default_factory=list)


@dataclass(frozen=True)
class DescribeReport:
    plan: str
    environment: str
    queues: list[QueueReport]
    indexes: list[IndexReport]

    @property
    def provisioned(self) -> bool:
        return all(q.info for q in self.queues) and all(i.info for i in self.indexes)

    @property
    def unreadable(self) -> list[tuple[str, Readback]]:
        """Indexes (and versions) whose stored vectors cannot be read back."""
        return [(i.name, r) for i in self.indexes for r in i.readback if not r.ok]


__all__ = ["REBUILD", "DescribeReport", "IndexReport", "QueueReport", "describe"]


def describe(plan: Plan, services: Services) -> DescribeReport:
    """Show each queue (depth, redrive) and the index (dimension, metric, records, fields),
    and read each version's vectors back with a sample query."""
    queues = [
        QueueReport(role, name, services.broker.inspect(name))
        for role, name in (("embed", plan.queue.name), ("dead-letter", plan.queue.dead_letter))
    ]
    indexes = []
    for name in dict.fromkeys([plan.index.name, *(plan.index_name_for(v) for v in plan.models)]):
        info = services.store.inspect(name)
        by_version: dict[int, int] = {}
        readback: list[Readback] = []  # a sample query per version with records
        if info is not None and info.count:
            index = services.store.open(name)
            for version in sorted(plan.models):
                if plan.index_name_for(version) == name:
                    by_version[version] = index.count(version=version)
            readback = [read_back(index, v) for v, n in by_version.items() if n]
        layout = Layout.from_metadata(info.manifest, name).describe() if info else ""
        indexes.append(IndexReport(name, info, by_version, layout, readback))
    return DescribeReport(plan.name, plan.environment, queues, indexes)
