"""`constellation doctor` on the embedded default (real stores, fake model): a backlog with no
worker, a malformed job in the dead-letter queue and a record deleted behind the tool's back
are each named with their evidence; a healthy setup has no findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation import records
from constellation.jobs import Job
from constellation.queues.port import Outgoing
from constellation.worker import build_worker
from phases.doctor import DoctorReport, doctor
from phases.migrate.phase1 import phase1
from tests.support.migration import RigMigration, started


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path, notes=40, users=4) as rigged:
        assert phase1(rigged, wait=True).ok  # dual writes, every note in both systems
        yield rigged


def area(report: DoctorReport, key: str) -> object:
    return next(a for a in report.areas if a.key == key)


def run(m: RigMigration) -> DoctorReport:
    return doctor(m, samples=40, queries=5, interval=0.2)


def test_a_healthy_migration_has_no_findings(m: RigMigration) -> None:
    report = run(m)
    assert report.healthy, [f.problem for f in report.findings]
    consistency = area(report, "consistency")
    assert consistency.figures["new index records"] == consistency.figures["old index records"]  # type: ignore[attr-defined]
    assert area(report, "queries").figures["queries measured"] == 5  # type: ignore[attr-defined]


def test_doctor_names_a_backlog_a_dead_letter_and_a_deleted_record(m: RigMigration) -> None:
    # a malformed job goes to the dead-letter queue through a real worker
    m.services.queue.send_batch([Outgoing('{"userId": "u1", "noteId": "broken"')])
    build_worker(m.plan, m.services, switch=m.state, failures=m.failures).run(drain=True)
    # a record removed from the new index by hand
    victim = m.sample[7]
    m.services.index().delete([records.record_id(victim.user_id, victim.id, 1)])
    # jobs keep arriving and no worker runs
    backlog = [Job("u9", f"late-{i}", f"late note {i}", 1_700_000_000_000, 1) for i in range(6)]
    m.services.queue.send_batch([Outgoing(job.to_body()) for job in backlog])

    report = run(m)
    assert not report.healthy
    problems = {f.area: f for f in report.findings}
    assert set(problems) == {
        "queue backlog or slow processing",
        "embedding errors",
        "inconsistent results between the systems",
    }

    waiting = problems["queue backlog or slow processing"]
    assert waiting.problem.startswith("6 job(s) wait and no worker is consuming")
    assert waiting.evidence["waiting"] == 6 and waiting.evidence["processing rate (jobs/s)"] == 0
    assert waiting.next_command == "constellation worker run"

    dead = problems["embedding errors"]
    assert dead.problem == "1 dead letter(s): not_json"
    assert dead.next_command == "constellation recover"
    (shown,) = dead.evidence["preprocessing"]
    assert shown["rejected"].startswith("not_json")
    assert shown["body"] == '{"userId": "u1", "noteId": "broken"'

    missing = problems["inconsistent results between the systems"]
    assert missing.problem.startswith("1 of 40 sampled note(s): missing in the new index")
    assert missing.evidence["notes"] == [{"user": victim.user_id, "note": victim.id}]
    assert (
        missing.next_command == f"constellation requeue --user {victim.user_id} --note {victim.id}"
    )
    errors = area(report, "errors")
    assert errors.figures["dead letters by reason"] == {"not_json": 1}  # type: ignore[attr-defined]
    assert errors.figures["model check"]["v1"].startswith("all-MiniLM-L6-v2: loaded, 384 dims")  # type: ignore[attr-defined]


def test_the_backlog_advice_uses_tunes_figures_when_it_ran(m: RigMigration) -> None:
    (m.plan.data_dir / "tune.json").write_text(
        json.dumps(
            {"recommended": {"max_batch_size": 32, "max_concurrency": 4, "jobs_per_second": 0.005}}
        )
    )
    m.services.queue.send_batch(
        [Outgoing(Job("u", f"n{i}", "t", 1, 1).to_body()) for i in range(9)]
    )
    (finding,) = [f for f in run(m).findings if f.area == "queue backlog or slow processing"]
    evidence = finding.evidence
    assert (evidence["max_batch_size"], evidence["max_concurrency"]) == (32, 4)
    assert evidence["settings from"] == "constellation tune"
    # 9 jobs within the 15-minute target is 0.01 jobs/s: two workers at tune's 0.005 each
    assert evidence["workers needed"] == 2


def test_a_stale_record_shows_which_text_the_old_side_embedded(m: RigMigration) -> None:
    note = m.sample[3]
    # the old system stored a vector of other text for this note (e.g. an edit it missed)
    stale = type(note)(note.id, note.user_id, note.content + " (an older draft)", 1, 1)
    # (the old system keeps the newer of two writes: the stale one replaces a removed record)
    m.legacy.delete_many([(note.user_id, note.id)])
    m.legacy.write(stale)
    report = run(m)
    problems = [f.problem for f in report.findings]
    assert any("old record embedded other text" in p for p in problems), problems
    assert any("older than the note's last edit" in p for p in problems), problems


def test_the_cli_exits_1_with_findings_and_prints_them(
    m: RigMigration, invoke: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    m.services.queue.send_batch([Outgoing(Job("u", "n", "t", 1, 1).to_body())])
    from constellation import services as services_module

    embedder = m.services.embedder()
    monkeypatch.setattr(
        services_module, "build_embedder", lambda plan, version, loading=None: embedder
    )
    plan = str(m.plan.file)
    m.services.close()  # the CLI opens the index itself
    result = invoke("--plan", plan, "doctor", "--json", "--interval", "0.1", "--queries", "2")  # type: ignore[operator]
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] is False
    assert data["findings"][0]["problem"].startswith("1 job(s) wait and no worker is consuming")
    table = invoke("--plan", plan, "doctor", "--interval", "0.1", "--queries", "2")  # type: ignore[operator]
    assert table.exit_code == 1
    assert "1 finding(s)" in table.stdout and "constellation worker run" in table.stdout
