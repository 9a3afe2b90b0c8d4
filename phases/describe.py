"""``describe``: what the plan's queues and index look like right now."""

from __future__ import annotations

from dataclasses import dataclass, field

from constellation.index.layout import Layout
from constellation.index.port import IndexInfo
from constellation.plan import Plan
from constellation.queues.port import QueueInfo
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


@dataclass(frozen=True)
class DescribeReport:
    plan: str
    environment: str
    queues: list[QueueReport]
    indexes: list[IndexReport]

    @property
    def provisioned(self) -> bool:
        return all(q.info for q in self.queues) and all(i.info for i in self.indexes)


def describe(plan: Plan, services: Services) -> DescribeReport:
    """Show each queue (depth, redrive) and the index (dimension, metric, records, fields)."""
    queues = [
        QueueReport(role, name, services.broker.inspect(name))
        for role, name in (("embed", plan.queue.name), ("dead-letter", plan.queue.dead_letter))
    ]
    indexes = []
    for name in dict.fromkeys([plan.index.name, *(plan.index_name_for(v) for v in plan.models)]):
        info = services.store.inspect(name)
        by_version: dict[int, int] = {}
        if info is not None and info.count:
            index = services.store.open(name)
            for version in sorted(plan.models):
                if plan.index_name_for(version) == name:
                    by_version[version] = index.count(version=version)
        layout = Layout.from_metadata(info.manifest).describe() if info else ""
        indexes.append(IndexReport(name, info, by_version, layout))
    return DescribeReport(plan.name, plan.environment, queues, indexes)
