"""Rollbacks, requeue and recover on the embedded default (real stores, fake model)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation import records
from constellation.errors import NoteNotFound, StateError
from constellation.jobs import Job
from constellation.migration.router import serves_new
from constellation.migration.source import Note
from constellation.queues.port import Outgoing
from constellation.worker import build_worker
from phases.checks.compare import compare
from phases.migrate import rollback
from phases.migrate.consumer import consumer
from phases.migrate.phase1 import phase1
from phases.migrate.phase2 import phase2
from phases.operate.recover import recover
from phases.operate.requeue import requeue
from tests.support.migration import RigMigration, search_until, started


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path) as rigged:
        yield rigged


def drain(m: RigMigration) -> None:
    worker = build_worker(m.plan, m.services, switch=m.state, failures=m.failures)
    worker.run(drain=True)


def test_quick_rollback_mid_phase2_sends_everyone_back_and_keeps_dual_writes(
    m: RigMigration,
) -> None:
    assert phase1(m, wait=True).ok
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    search_until(m, 10)
    assert phase2(m, mode="step").ok
    assert m.state.read().read_traffic == 0.5
    users = sorted({n.user_id for n in m.sample})
    assert any(serves_new(u, 0.5) for u in users)

    report = rollback.rollback_quick(m, reason="search quality complaints")
    state = m.state.read()
    assert (state.read_traffic, state.consumer_enabled, state.write_mode) == (0.0, False, "dual")
    assert m.state.journal()[-1].reason == "search quality complaints"
    assert rollback.rollback_quick(m).steps[0].outcome == "unchanged"  # safe to repeat
    assert report.state is not None and report.state.phase == 2

    after = time.time()
    router = m.router()  # state_refresh 0 in tests: the next search sees the rollback
    for user in users:
        router.search("python", user)
    deadline = time.monotonic() + 5
    while len(m.comparisons.since(after)) < len(users) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {c.served for c in m.comparisons.since(after)} == {"old"}

    # a note written during the rollback reaches both systems
    note = Note("note-rollback", users[0], "written while rolled back", 5, 5)
    router.write(note)
    router.close()
    assert m.legacy.get(note.user_id, note.id) is not None
    assert m.services.queue.depth().visible == 1  # waits for the consumer to be enabled
    consumer(m, True)
    drain(m)
    assert m.services.index().get([records.record_id(note.user_id, note.id, 1)])


def test_recover_names_exactly_the_deleted_records_and_requeue_restores_exactly_them(
    m: RigMigration,
) -> None:
    assert phase1(m, wait=True).ok
    index = m.services.index()
    deleted = sorted(r.id for r in index.scan())[5:17]
    index.delete(deleted)
    # and one record made stale: an older edit time than the source's
    stale_id = sorted(r.id for r in index.scan())[0]
    record = index.get([stale_id], include_vectors=True)[stale_id]
    assert record.vector is not None
    from constellation.index.port import VectorRecord

    index.upsert([VectorRecord(stale_id, record.vector, {**record.metadata, "created": 1})])

    report = recover(m)
    named = {records.record_id(a.user_id or "", a.note_id or "", 1) for a in report.affected}
    assert named == {*deleted, stale_id}
    assert {a.problem for a in report.affected} == {
        "missing",
        "stale: older than the note's last edit",
    }
    assert sum(report.by_user.values()) == 13

    dry = requeue(m, missing=True, dry_run=True)
    assert len(dry.would_send) == 13 and m.services.queue.depth().total == 0
    sent = requeue(m, missing=True)
    assert sent.sent == 13
    assert m.services.queue.depth().visible == 13  # no extra jobs
    drain(m)
    assert index.count() == 120
    assert recover(m).affected == []


def test_recover_requeue_then_reports_zero(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    index = m.services.index()
    index.delete(sorted(r.id for r in index.scan())[:7])
    # a valid job that failed for good (model error) and a malformed one, both dead-lettered
    m.services.dead_letter.send_batch(
        [
            Outgoing(Job("user-01", "note-x", "hello", 1, 1).to_body(), {"reason": "model_error"}),
            Outgoing("{not json", {"reason": "not_json"}),
        ]
    )
    first = recover(m, requeue_them=True)
    assert len(first.affected) == 8 and len(first.unrecoverable) == 1
    assert first.requeue is not None and first.requeue.sent == 8
    drain(m)
    again = recover(m)
    assert again.affected == []
    assert [a.problem for a in again.unrecoverable] == ["dead letter (not_json)"]


def test_from_dlq_revalidates_and_leaves_what_cannot_succeed(m: RigMigration) -> None:
    m.services.dead_letter.send_batch(
        [
            Outgoing(Job("u", "n1", "fine", 1, 1).to_body(), {"reason": "model_error"}),
            Outgoing(Job("u", "n2", "bad version", 1, 9).to_body(), {"reason": "unknown_version"}),
        ]
    )
    report = requeue(m, from_dlq=True)
    assert report.moved_from_dlq == 1
    assert len(report.left_in_dlq) == 1 and report.left_in_dlq[0][1].startswith("unknown_version")
    (moved,) = m.services.queue.receive(10)
    assert "reason" not in moved.attributes
    assert m.services.dead_letter.depth().total == 1


def test_full_rollback_then_phase1_again_completes(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    report = rollback.rollback_full(m, reason="start over")
    state = m.state.read()
    assert (state.write_mode, state.read_traffic, state.consumer_enabled, state.status) == (
        "old",
        0.0,
        False,
        "rolled_back",
    )
    assert m.services.index().count() == 120  # kept for the retry
    assert "Queues and index are kept" in report.message
    with pytest.raises(StateError):
        phase2(m)
    again = phase1(m, wait=True)
    assert again.ok
    assert [s.outcome for s in again.steps][:2] == ["updated", "updated"]  # every note re-sent
    assert m.state.read().consumer_enabled is True


def test_full_rollback_can_delete_the_service_only_after_archiving_it(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    with pytest.raises(StateError, match="--yes"):
        rollback.rollback_full(m, delete_service=True)
    report = rollback.rollback_full(m, delete_service=True, yes=True)
    assert report.archive is not None and Path(report.archive).exists()
    from phases.migrate.archive import archive_count

    assert archive_count(Path(report.archive)) == 120
    assert m.services.broker.inspect(m.plan.queue.name) is None
    assert m.services.store.inspect(m.plan.index.name) is None


def test_compare_shows_both_sides_and_their_cosine(m: RigMigration) -> None:
    assert phase1(m, wait=True).ok
    note = m.sample[3]
    report = compare(m, note.user_id, note.id)
    assert report.old.present and report.new.present
    assert report.cosine == pytest.approx(1.0, abs=1e-5)
    assert report.new.metadata["noteId"] == note.id
    # a note nowhere (source, old, new) is an error naming it, not a report of three absences
    with pytest.raises(NoteNotFound, match="no note no-such-note of user "):
        compare(m, note.user_id, "no-such-note")
