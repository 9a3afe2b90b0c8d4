"""The operator's first hour, repair: ``recover`` says why a record is stale and what fixes it,
``requeue --force`` fixes a record newer than its source row, and ``compare`` shows the source
row beside the old and the new record (issue 16)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from constellation import records
from constellation.index.port import VectorRecord
from constellation.migration.source import NotesSource, create_notes_table, insert_notes
from constellation.plan import load_plan
from constellation.preprocess import normalize
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.sample_notes import sample_notes
from tests.integration.conftest import FAST, write_plan
from tests.support.cli import Invoke
from tests.support.model import real_embedder

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]

DAY_MS = 86_400_000


def test_a_record_newer_than_its_source_row_is_named_and_fixed_by_a_forced_requeue(
    invoke: Invoke, tmp_path: Path
) -> None:
    plan_path = write_plan(tmp_path / "local.yaml", "local.yaml", FAST)
    plan = load_plan(plan_path)
    notes = sample_notes(12, users=2)
    create_notes_table(plan.source_url)
    source = NotesSource.from_plan(plan)
    insert_notes(source, notes)
    source.close()
    with Services(plan, embedders={1: real_embedder()}) as services, Migration(plan, services) as m:
        m.legacy.write_many(notes)  # the old system, filled inline
    assert invoke("--plan", str(plan_path), "provision").exit_code == 0
    assert invoke("--plan", str(plan_path), "requeue", "--all").exit_code == 0
    assert invoke("--plan", str(plan_path), "worker", "run", "--drain").exit_code == 0

    # Two records go wrong: one newer than its source row with other content (an edit the
    # source never got), one older than the source row.
    newer, older = notes[0], notes[1]
    with Services(plan, embedders={1: real_embedder()}) as services:
        index = services.index()
        for note, created, text in (
            (newer, newer.edited + DAY_MS, "an edit the source never saw"),
            (older, older.edited - DAY_MS, older.content),
        ):
            rid = records.record_id(note.user_id, note.id, 1)
            stored = index.get([rid], include_vectors=True)[rid]
            assert stored.vector is not None
            meta = {
                **stored.metadata,
                "created": created,
                "contentHash": records.content_hash(text, "all-MiniLM-L6-v2"),
                "sourceHash": records.source_hash(normalize(text), "all-MiniLM-L6-v2"),
            }
            index.upsert([VectorRecord(rid, stored.vector, meta)])

    report = json.loads(invoke("--plan", str(plan_path), "recover", "--json").stdout)
    found = {a["note_id"]: a for a in report["affected"]}
    assert set(found) == {newer.id, older.id}
    assert found[newer.id]["problem"] == "stale: newer than the source row"
    assert found[newer.id]["fix"] == "requeue --force"
    assert found[newer.id]["command"] == (
        f"constellation requeue --user {newer.user_id} --note {newer.id} --version 1 --force"
    )
    assert found[older.id]["problem"] == "stale: older than the note's last edit"
    assert found[older.id]["fix"] == "requeue"
    edited = datetime.fromisoformat(found[newer.id]["source_edited"])
    assert datetime.fromisoformat(found[newer.id]["record_created"]) > edited

    table = invoke("--plan", str(plan_path), "recover")
    assert "requeue --force" in table.stdout
    assert "`constellation requeue --missing --force`" in table.stderr

    # compare shows the source row beside the records: its edit time and its hash differ
    compared = invoke(
        "--plan", str(plan_path), "compare", "--user", newer.user_id, "--note", newer.id
    )
    assert compared.exit_code == 0, compared.output
    rows = {
        line.split("│")[1].strip(): line for line in compared.stdout.splitlines() if "│" in line
    }
    local = datetime.fromtimestamp(newer.edited / 1000).strftime("%Y-%m-%d %H:%M:%S")
    assert local in rows["created"]
    assert "1,7" not in compared.stdout  # no epoch milliseconds
    compared_json = json.loads(
        invoke(
            "--plan",
            str(plan_path),
            "compare",
            "--user",
            newer.user_id,
            "--note",
            newer.id,
            "--json",
        ).stdout
    )
    source_row = compared_json["source"]["metadata"]
    assert source_row["text"].startswith(newer.content[:40])
    assert source_row["contentHash"] != compared_json["new"]["metadata"]["contentHash"]
    assert datetime.fromisoformat(source_row["created"]).timestamp() * 1000 == newer.edited

    # --requeue fixes what a plain job can fix and leaves the newer record, saying why
    fixed = invoke("--plan", str(plan_path), "recover", "--requeue")
    assert fixed.exit_code == 0, fixed.output
    assert "requeued 1 job(s)" in fixed.stdout
    assert invoke("--plan", str(plan_path), "worker", "run", "--drain").exit_code == 0
    left = json.loads(invoke("--plan", str(plan_path), "recover", "--json").stdout)["affected"]
    assert [(a["note_id"], a["fix"]) for a in left] == [(newer.id, "requeue --force")]

    # the forced requeue replaces it with the source's text and time
    forced = invoke("--plan", str(plan_path), *found[newer.id]["command"].split()[1:])
    assert forced.exit_code == 0, forced.output
    assert invoke("--plan", str(plan_path), "worker", "run", "--drain").exit_code == 0
    assert (
        json.loads(invoke("--plan", str(plan_path), "recover", "--json").stdout)["affected"] == []
    )
    after = json.loads(
        invoke(
            "--plan",
            str(plan_path),
            "compare",
            "--user",
            newer.user_id,
            "--note",
            newer.id,
            "--json",
        ).stdout
    )
    assert after["new"]["metadata"]["contentHash"] == after["source"]["metadata"]["contentHash"]
    assert after["new"]["metadata"]["created"] == after["source"]["metadata"]["created"]
