"""The app-side router: write modes, sticky bucketing, shadows that can never hurt the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from constellation.errors import Unavailable
from constellation.ledger.comparisons import ComparisonLog
from constellation.ledger.state import StateStore
from constellation.migration.router import Router, bucket, serves_new
from constellation.migration.source import Note
from constellation.query import SearchResult
from constellation.queues.port import QueueSpec
from constellation.queues.sqlite import SqliteBroker, SqliteQueue
from tests.support.cli import REPO

NOTE = Note("n1", "u1", "hello world", 1, 2)


def results(*ids: str) -> list[SearchResult]:
    return [SearchResult(i, 1.0 - n / 10, 0, 1) for n, i in enumerate(ids)]


class FakeLegacy:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.written: list[Note] = []

    def write(self, note: Note) -> None:
        if self.fail:
            raise RuntimeError("old system down")
        self.written.append(note)

    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        if self.fail:
            raise RuntimeError("old system down")
        return results("a", "b", "c")


class BatchLegacy(FakeLegacy):
    """An old system that also writes a batch in one call."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(fail)
        self.calls: list[int] = []

    def write_many(self, notes: list[Note]) -> None:
        if self.fail:
            raise RuntimeError("old system down")
        self.calls.append(len(notes))
        self.written += notes


class BrokenQueue:
    name = "broken"

    def send_batch(self, messages: object) -> object:
        raise RuntimeError("queue down")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[StateStore, ComparisonLog, SqliteQueue]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    broker = SqliteBroker(tmp_path / "q.db")
    broker.create(QueueSpec("q", 30))
    return StateStore(url, "p", "dev"), ComparisonLog(url, "p", "dev"), broker.open("q")


def make(parts, legacy=None, new_search=None, queue=None, open_queue=None, **kw) -> Router:  # type: ignore[no-untyped-def]
    state, log, q = parts
    return Router(
        state,
        legacy or FakeLegacy(),
        open_queue or (lambda: queue or q),
        new_search or (lambda text, user, k: results("a", "b", "x")),
        log,
        state_refresh=0,
        **kw,
    )


def wait_for(log: ComparisonLog, n: int) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + 5
    while len(rows := log.since(0)) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return rows


def test_write_modes(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, queue = parts
    legacy = FakeLegacy()
    router = make(parts, legacy=legacy)
    router.write(NOTE)
    assert legacy.written == [NOTE] and queue.depth().total == 0
    state.change("test", "dual", write_mode="dual")
    router.write(NOTE)
    assert len(legacy.written) == 2 and queue.depth().total == 1
    state.change("test", "new", write_mode="new")
    router.write(NOTE)
    assert len(legacy.written) == 2 and queue.depth().total == 2
    (message,) = [m for m in queue.receive(10) if '"noteId": "n1"' in m.body][:1]
    assert '"created": 2' in message.body  # the job carries the note's last edit time


def test_the_queue_is_opened_only_by_the_first_write_that_needs_it(parts) -> None:  # type: ignore[no-untyped-def]
    # In write mode old the app's writes never touch the queue, so an import (or the app) works
    # before `provision` has created it; the first dual write opens it.
    state, _, queue = parts
    opened: list[int] = []

    def open_queue() -> SqliteQueue:
        opened.append(1)
        return queue

    legacy = BatchLegacy()
    router = make(parts, legacy=legacy, open_queue=open_queue)
    router.write(NOTE)
    router.write_many([NOTE, NOTE])
    assert opened == [] and len(legacy.written) == 3
    state.change("test", "dual", write_mode="dual")
    router.write(NOTE)
    router.write(NOTE)
    assert opened == [1] and queue.depth().total == 2


def test_dual_write_with_old_side_down_still_writes_new_and_counts(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, queue = parts
    state.change("test", "dual", write_mode="dual")
    router = make(parts, legacy=FakeLegacy(fail=True))
    outcome = router.write(NOTE)  # no exception reaches the app
    assert (outcome.write_mode, outcome.written, outcome.failed) == ("dual", ("new",), ("old",))
    assert queue.depth().total == 1
    assert router.counters["write_old_failed"] == 1


def test_dual_write_with_new_side_down_still_writes_old_and_counts(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, _ = parts
    state.change("test", "dual", write_mode="dual")
    legacy = FakeLegacy()
    router = make(parts, legacy=legacy, queue=BrokenQueue())
    assert router.write(NOTE).failed == ("new",)
    assert legacy.written == [NOTE]
    assert router.counters["write_new_failed"] == 1


def test_dual_write_raises_only_when_both_sides_fail(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, _ = parts
    state.change("test", "dual", write_mode="dual")
    router = make(parts, legacy=FakeLegacy(fail=True), queue=BrokenQueue())
    with pytest.raises(RuntimeError):
        router.write(NOTE)


@pytest.mark.parametrize("target", [0.2, 0.5, 0.8])
def test_bucketing_is_sticky_and_fair(target: float) -> None:
    users = [f"user-{i}" for i in range(10_000)]
    share = sum(serves_new(u, target) for u in users) / len(users)
    assert abs(share - target) <= 0.01
    # raising traffic never moves anyone back
    assert all(serves_new(u, 0.9) for u in users if serves_new(u, target))


def test_a_user_gets_the_same_side_on_every_machine() -> None:
    """The bucket is a stable hash: another process (another PYTHONHASHSEED) agrees."""
    users = [f"user-{i}" for i in range(50)]
    code = (
        "import json, sys; from constellation.migration.router import bucket; "
        "print(json.dumps([bucket(u) for u in sys.argv[1:]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *users],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == [bucket(u) for u in users]


def test_old_serves_and_new_shadow_is_compared(parts) -> None:  # type: ignore[no-untyped-def]
    state, log, _ = parts
    state.change("test", "dual", write_mode="dual")
    router = make(parts)
    assert [r.note_id for r in router.search("q", "u1")] == ["a", "b", "c"]
    (row,) = wait_for(log, 1)
    assert row.served == "old"
    assert row.overlap == pytest.approx(2 / 3)
    assert (row.old_count, row.new_count, row.new_error) == (3, 3, None)


def test_a_raising_shadow_never_reaches_the_caller(parts) -> None:  # type: ignore[no-untyped-def]
    state, log, _ = parts
    state.change("test", "dual", write_mode="dual")

    def broken(text: str, user: str, k: int) -> list[SearchResult]:
        raise RuntimeError("new index down")

    router = make(parts, new_search=broken)
    assert [r.note_id for r in router.search("q", "u1")] == ["a", "b", "c"]
    # and when the new system should serve this user, the old one answers instead
    state.change("test", "all", read_traffic=1.0)
    routed = router.route("q", "u1")
    assert ([r.note_id for r in routed.results], routed.served_by) == (["a", "b", "c"], "old")
    rows = wait_for(log, 2)
    assert all("new index down" in (r.new_error or "") for r in rows)
    assert router.counters["fallback_to_old"] == 1


def test_a_slow_shadow_is_bounded_by_its_timeout(parts) -> None:  # type: ignore[no-untyped-def]
    state, log, _ = parts
    state.change("test", "dual", write_mode="dual")
    release = threading.Event()

    def slow(text: str, user: str, k: int) -> list[SearchResult]:
        release.wait(5)
        return results("a", "b", "c")

    router = make(parts, new_search=slow, shadow_timeout=0.2)
    started = time.monotonic()
    assert [r.note_id for r in router.search("q", "u1")] == ["a", "b", "c"]
    assert time.monotonic() - started < 0.15  # as a shadow it is not waited for at all
    state.change("test", "all", read_traffic=1.0)
    started = time.monotonic()
    assert [r.note_id for r in router.search("q", "u1")] == ["a", "b", "c"]  # old answers
    assert 0.2 <= time.monotonic() - started < 1.0  # waited the timeout, not the 5 s
    release.set()
    rows = wait_for(log, 2)
    assert all(r.new_error == "timeout" for r in rows)


def test_new_serves_its_users_when_healthy(parts) -> None:  # type: ignore[no-untyped-def]
    state, log, _ = parts
    state.change("test", "dual", write_mode="dual", read_traffic=1.0)
    router = make(parts)
    routed = router.route("q", "u1")
    assert ([r.note_id for r in routed.results], routed.served_by) == (["a", "b", "x"], "new")
    (row,) = wait_for(log, 1)
    assert row.served == "new"


def test_state_changes_reach_the_router_within_its_refresh(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, _ = parts
    now = [0.0]
    router = make(parts)
    router.state_refresh = 5.0
    router.clock = lambda: now[0]
    state.change("test", "dual", write_mode="dual", read_traffic=1.0)
    assert router.state().read_traffic == 1.0
    state.change("test", "rollback", read_traffic=0.0)
    now[0] = 4.9
    assert router.state().read_traffic == 1.0  # cached: bounded staleness
    now[0] = 5.0
    assert router.state().read_traffic == 0.0


def test_a_batch_write_is_one_call_to_each_system(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, queue = parts
    state.change("test", "dual", write_mode="dual")
    legacy = BatchLegacy()
    router = make(parts, legacy=legacy)
    notes = [Note(f"n{i}", "u1", f"text {i}", 1, 2) for i in range(7)]
    router.write_many(notes)
    assert legacy.calls == [7] and legacy.written == notes
    received = queue.receive(max_messages=10)
    assert sorted(json.loads(m.body)["noteId"] for m in received) == sorted(n.id for n in notes)
    assert router.counters["writes"] == 7


def test_a_failed_side_of_a_batch_counts_every_note(parts) -> None:  # type: ignore[no-untyped-def]
    state, _, _ = parts
    state.change("test", "dual", write_mode="dual")
    legacy = FakeLegacy()  # no write_many: one write per note
    router = make(parts, legacy=legacy, queue=BrokenQueue())
    router.write_many([Note(f"n{i}", "u1", "t", 1, 2) for i in range(3)])
    assert len(legacy.written) == 3
    assert router.counters["write_new_failed"] == 3


def test_the_old_systems_failure_reaches_the_caller_named(parts) -> None:  # type: ignore[no-untyped-def]
    # The HTTP service answers it with a 503 naming the old system; the adapter's error is kept.
    router = make(parts, legacy=FakeLegacy(fail=True))
    for call in (lambda: router.route("q", "u1", 3), lambda: router.write(NOTE)):
        with pytest.raises(Unavailable) as failed:
            call()
        assert failed.value.component == "old system"
        assert str(failed.value) == "the old system failed: old system down"
        assert isinstance(failed.value.__cause__, RuntimeError)
