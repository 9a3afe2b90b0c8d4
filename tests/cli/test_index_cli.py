"""`constellation index migrate` and the layout in `describe`, through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from constellation import records
from constellation.index.port import IndexSpec, VectorRecord
from constellation.plan import load_plan
from constellation.services import Services
from tests.support.cli import Invoke


def with_partitions(plan: Path, partitions: int) -> Path:
    data = yaml.safe_load(plan.read_text())
    data["index"]["partitions"] = partitions
    plan.write_text(yaml.safe_dump(data))
    return plan


def test_index_migrate_moves_the_index_to_the_plans_partitions(
    invoke: Invoke, local_plan: Path
) -> None:
    plan = load_plan(with_partitions(local_plan, 2))
    with Services(plan) as services:
        services.store.create(IndexSpec(plan.index.name, 384))
        services.index().upsert(
            [
                VectorRecord(
                    records.record_id(f"user-{i}", "n1", 1),
                    [1.0] + [0.0] * 383,
                    {"userId": f"user-{i}", "noteId": "n1", "version": 1, "created": i},
                )
                for i in range(7)
            ]
        )
    with_partitions(local_plan, 3)

    dry = invoke("--plan", str(local_plan), "index", "migrate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would update" in dry.output and "copy every record" in dry.output

    moved = invoke("--plan", str(local_plan), "index", "migrate", "--grace", "0", "--json")
    assert moved.exit_code == 0, moved.output
    (report,) = json.loads(moved.output)
    assert report["before"] == "2 partitions by user"
    assert report["after"] == "3 partitions by user"
    assert report["counts"]["copied"] == 7
    assert [s["outcome"] for s in report["steps"]] == ["updated"] * 5

    described = invoke("--plan", str(local_plan), "describe", "--json")
    (index,) = json.loads(described.output)["indexes"]
    assert (index["layout"], index["info"]["count"]) == ("3 partitions by user", 7)

    again = invoke("--plan", str(local_plan), "index", "migrate")
    assert again.exit_code == 0, again.output
    assert "already 3 partitions by user" in again.output
