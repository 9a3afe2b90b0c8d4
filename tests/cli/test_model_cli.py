"""A model upgrade through the CLI with the real models: version 1 (sentence-transformers) to
version 2 (the same weights on ONNX Runtime, int8, exported offline on first use), then switch
and finalize, each a command as an operator types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constellation.plan import load_plan
from constellation.services import Services
from tests.support.cli import Invoke
from tests.support.migration import sample_app
from tests.support.model import real_embedder

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.usefixtures("shared_model")]


def test_upgrade_switch_and_finalize_to_the_onnx_version(invoke: Invoke, local_plan: Path) -> None:
    p = ("--plan", str(local_plan))
    assert invoke(*p, "provision").exit_code == 0
    plan = load_plan(local_plan)
    with Services(plan, embedders={1: real_embedder()}) as services:
        notes = sample_app(plan, services, notes=16, users=2)
    first = invoke(*p, "migrate", "phase", "1", "--wait")
    assert first.exit_code == 0, first.output

    upgraded = invoke(*p, "model", "upgrade", "--to", "2", "--json")
    assert upgraded.exit_code == 0, upgraded.output
    drained = invoke(*p, "worker", "run", "--drain", "--json")
    assert drained.exit_code == 0, drained.output
    stats = json.loads(drained.stdout)["stats"]
    assert stats["dead_lettered"] == {} and stats["processed"] == 16, stats
    switched = invoke(*p, "model", "switch", "--to", "2", "--json")
    assert switched.exit_code == 0, switched.output
    assert json.loads(switched.stdout)["records_by_version"] == {"1": 16, "2": 16}
    finalized = invoke(*p, "model", "finalize", "--yes", "--json")
    assert finalized.exit_code == 0, finalized.output
    assert json.loads(finalized.stdout)["records_by_version"] == {"1": 0, "2": 16}

    note = notes[3]
    words = " ".join(note.content.split()[:12])
    found = invoke(*p, "query", words, "--user", note.user_id, "--json")
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)
    assert hits[0]["note_id"] == note.id, hits  # found by the ONNX version's vectors
    assert {hit["version"] for hit in hits} == {2}
    owners = {n.id: n.user_id for n in notes}
    assert all(owners[hit["note_id"]] == note.user_id for hit in hits)
