"""A model-version migration from the local model to a provider and back, through the CLI as
an operator types it: version 1 is all-MiniLM-L6-v2 in this process, version 3 the same model
served by Infinity. ``model upgrade`` embeds every note again through the provider, ``model
switch`` passes its gates (coverage, agreement, and the judged query set's quality), ``model
finalize`` leaves the provider's vectors alone; then the same way back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constellation.plan import load_plan
from constellation.services import Services
from tests.integration.conftest import FAST, provider_model, write_plan
from tests.support.cli import Invoke
from tests.support.fault_proxy import FaultProxy
from tests.support.migration import sample_app
from tests.support.model import real_embedder

pytestmark = [
    pytest.mark.model,
    pytest.mark.servers,
    pytest.mark.slow,
    pytest.mark.usefixtures("shared_model"),
]


def test_local_to_provider_and_back_through_upgrade_switch_and_finalize(
    invoke: Invoke, fault_proxy: FaultProxy, infinity_key: str, tmp_path: Path
) -> None:
    golden = tmp_path / "golden.jsonl"
    overrides = provider_model(fault_proxy.url)
    overrides["default_version"] = 1
    overrides["migration"] = {"quality": {"golden": str(golden)}}
    path = write_plan(tmp_path / "plan.yaml", "local.yaml", FAST, overrides)
    p = ("--plan", str(path))
    assert invoke(*p, "provision").exit_code == 0
    plan = load_plan(path)
    with Services(plan, embedders={1: real_embedder()}) as services:
        notes = sample_app(plan, services, notes=16, users=2)
    golden.write_text(
        "".join(
            json.dumps(
                {
                    "userId": n.user_id,
                    "query": " ".join(n.content.split()[:10]),
                    "relevant": [n.id],
                }
            )
            + "\n"
            for n in notes[:8]
        )
    )
    first = invoke(*p, "migrate", "phase", "1", "--wait")
    assert first.exit_code == 0, first.output

    for to, before in ((3, 1), (1, 3)):
        upgraded = invoke(*p, "model", "upgrade", "--to", str(to), "--json")
        assert upgraded.exit_code == 0, upgraded.output
        drained = invoke(*p, "worker", "run", "--drain", "--json")
        assert drained.exit_code == 0, drained.output
        stats = json.loads(drained.stdout)["stats"]
        assert stats["dead_lettered"] == {} and stats["processed"] == 16, (
            stats,
            upgraded.stdout,
            drained.stderr[-2000:],
        )
        switched = invoke(*p, "model", "switch", "--to", str(to), "--json")
        assert switched.exit_code == 0, switched.output
        report = json.loads(switched.stdout)
        names = {c["name"] for c in report["gate"]["checks"]}
        assert any("quality" in n or "ndcg" in n.lower() for n in names), names
        finalized = invoke(*p, "model", "finalize", "--yes", "--json")
        assert finalized.exit_code == 0, finalized.output
        counts = json.loads(finalized.stdout)["records_by_version"]
        assert (counts[str(to)], counts[str(before)]) == (16, 0), counts

        note = notes[3]
        words = " ".join(note.content.split()[:12])
        found = invoke(*p, "query", words, "--user", note.user_id, "--json")
        assert found.exit_code == 0, found.output
        hits = json.loads(found.stdout)
        results = hits["results"] if isinstance(hits, dict) else hits
        assert results[0]["note_id"] == note.id and {h["version"] for h in results} == {to}
    # the provider was really asked: every note once on the way there, and the searches
    assert len(fault_proxy.seen) >= 2
