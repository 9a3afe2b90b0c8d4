"""`constellation index migrate` and the layout in `describe`, through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import Result

from constellation import records
from constellation.errors import StateError
from constellation.index import relayout
from constellation.index.layout import INLINE, Layout, partition_name, partition_of
from constellation.index.port import IndexSpec, VectorRecord
from constellation.ledger.state import open_state
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
    partitioned_index(local_plan, 2)
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


def partitioned_index(local_plan: Path, partitions: int, users: int = 7) -> Path:
    """The plan's index laid out in ``partitions``, one record per user."""
    plan = load_plan(with_partitions(local_plan, partitions))
    state = open_state(plan)
    state.record("provision", "migration state recorded: not started")
    state.close()
    with Services(plan) as services:
        services.store.create(IndexSpec(plan.index.name, 384))
        services.index().upsert(
            [
                VectorRecord(
                    records.record_id(f"user-{i}", "n1", 1),
                    [1.0] + [0.0] * 383,
                    {"userId": f"user-{i}", "noteId": "n1", "version": 1, "created": i},
                )
                for i in range(users)
            ]
        )
    return local_plan


def raw_count(local_plan: Path) -> int:
    """Every record in every collection of the index, counted by Chroma itself."""
    plan = load_plan(local_plan)
    with Services(plan) as services:
        inner = services.store.inner
        names = [plan.index.name] + [
            partition_name(plan.index.name, n, k) for n in (2, 3) for k in range(n)
        ]
        return sum(inner.open(n).count() for n in names if inner.manifest(n) is not None)


def one_line_error(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output, result.output
    return lines[0]


def test_a_damaged_manifest_is_named_and_never_read_as_no_layout(
    invoke: Invoke, local_plan: Path
) -> None:
    """D2: `partitions: 'banana'` in the manifest: every command names the damage (exit 1),
    `index migrate` removes nothing, and `index repair` sets it back from the partitions."""
    partitioned_index(local_plan, 2)
    plan = load_plan(local_plan)
    with Services(plan) as services:
        services.store.set_manifest(plan.index.name, {"partitions": "banana"})
    assert raw_count(local_plan) == 7
    p = ("--plan", str(local_plan))
    for args in [
        ("describe",),
        ("query", "--user", "user-1", "anything", "--json"),
    ]:
        result = invoke(*p, *args)
        assert result.exit_code == 1, (args, result.output)
        first = one_line_error(result)
        assert "manifest of index" in first and "damaged" in first, result.output
        assert "partitions is 'banana'" in result.output, result.output
    with_partitions(local_plan, 3)
    moved = invoke(*p, "index", "migrate", "--grace", "0")
    assert moved.exit_code == 1, moved.output
    assert "damaged" in moved.output and "index repair" in moved.output
    assert raw_count(local_plan) == 7  # every record in place

    with_partitions(local_plan, 2)
    repaired = invoke(*p, "index", "repair")
    assert repaired.exit_code == 0, repaired.output
    assert "recorded 2 partitions by user" in repaired.output, repaired.output
    described = invoke(*p, "describe", "--json")
    assert described.exit_code == 0, described.output
    (index,) = json.loads(described.output)["indexes"]
    assert (index["layout"], index["info"]["count"]) == ("2 partitions by user", 7)


def test_index_migrate_never_removes_records_it_did_not_copy(local_plan: Path) -> None:
    """D2: a manifest naming the wrong layout (an empty one as the current, the real records in
    the target): the catch-up refuses to remove what this move never copied."""
    partitioned_index(local_plan, 2)
    plan = load_plan(local_plan)
    with Services(plan) as services:
        store = services.store
        name = plan.index.name
        store.set_layout(name, Layout(INLINE, moving_to=2, copied=1))
        counts = relayout.MoveCounts()
        with pytest.raises(StateError, match="nothing was removed"):
            relayout.catch_up(store, name, counts=counts)
        assert counts.removed == 0
        store.set_layout(name, Layout(2))
    assert raw_count(local_plan) == 7


def test_a_deleted_partition_is_named_and_provision_recreates_it(
    invoke: Invoke, local_plan: Path
) -> None:
    """D8: one partition deleted behind the tool's back: searches name it and say what to do;
    `provision` recreates it (empty) and names `requeue --missing`."""
    partitioned_index(local_plan, 2)
    plan = load_plan(local_plan)
    gone = partition_name(plan.index.name, 2, partition_of("user-1", 2))
    with Services(plan) as services:
        services.store.inner.delete_index(gone)
    p = ("--plan", str(local_plan))
    query = invoke(*p, "query", "--user", "user-1", "anything")
    assert query.exit_code == 1, query.output
    assert f"partition {gone}" in one_line_error(query) and "requeue --missing" in query.output
    provisioned = invoke(*p, "provision")
    assert provisioned.exit_code == 0, provisioned.output
    assert f"recreated {gone}" in provisioned.output and "requeue" in provisioned.output
    again = invoke(*p, "query", "--user", "user-1", "anything", "--json")
    assert again.exit_code == 0, again.output
    assert invoke(*p, "provision").exit_code == 0


def test_index_migrate_dry_run_is_titled_with_the_layout_it_would_make(
    invoke: Invoke, local_plan: Path
) -> None:
    """D9: the dry run's title names the plan's layout as the result, as the run does."""
    partitioned_index(local_plan, 2)
    with_partitions(local_plan, 3)
    dry = invoke("--plan", str(local_plan), "index", "migrate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 partitions by user → 3 partitions by user" in dry.output, dry.output
