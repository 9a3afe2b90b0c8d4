"""Requests from many threads served in groups (constellation/coalesce.py), and the worker's
gathered index writes that keep the newest edit (constellation/worker/access.py and
write_behind.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from constellation import records
from constellation.coalesce import Coalescer
from constellation.errors import VectorIndexError
from constellation.index.port import VectorRecord
from constellation.jobs import Job
from constellation.queues.port import Message
from constellation.worker.access import IndexAccess, Snapshot
from constellation.worker.events import PROCESSED, SKIPPED
from constellation.worker.outcomes import Pending
from tests.fakes import MemoryIndex


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` (polled), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def test_requests_waiting_together_are_served_in_one_call_in_order() -> None:
    groups: list[list[int]] = []
    gate, entered = threading.Event(), threading.Event()

    def serve(requests: Sequence[int]) -> list[int]:
        entered.set()
        gate.wait(5)  # the first call holds the thread while the others queue up
        groups.append(list(requests))
        return [r * 10 for r in requests]

    coalescer: Coalescer[int, int] = Coalescer(serve, name="test")
    results: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda n=n: results.update({n: coalescer(n)})) for n in range(6)
    ]
    threads[0].start()
    assert entered.wait(5)
    for thread in threads[1:]:
        thread.start()
    until(lambda: coalescer.pending == 5)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == {n: n * 10 for n in range(6)}
    assert len(groups) == 2 and groups[0] == [0] and sorted(groups[1]) == [1, 2, 3, 4, 5]


def test_a_failing_request_fails_alone() -> None:
    def serve(requests: Sequence[int]) -> list[int]:
        if 3 in requests:
            raise ValueError("three is bad")
        return list(requests)

    coalescer: Coalescer[int, int] = Coalescer(serve, name="idle-test", idle=0.05)
    outcomes: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            outcomes[n] = coalescer(n)
        except ValueError as exc:
            outcomes[n] = str(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert outcomes == {0: 0, 1: 1, 2: 2, 3: "three is bad", 4: 4, 5: 5}
    # idle: the serving thread ends, and a new call starts another
    until(lambda: not any(t.name == "idle-test" for t in threading.enumerate()))
    assert coalescer(7) == 7


def test_two_serving_threads_share_what_is_pending_and_run_at_once() -> None:
    """The model's streams: with two threads, a group takes half of what waits, and the
    other half is served meanwhile on the other thread (each thread set up once)."""
    gate, entered = threading.Event(), threading.Event()
    running: list[str] = []
    groups: list[list[int]] = []
    set_up: list[str] = []
    lock = threading.Lock()

    def serve(requests: Sequence[int]) -> list[int]:
        with lock:
            running.append(threading.current_thread().name)
            groups.append(list(requests))
        if requests[0] == 0:
            entered.set()
            gate.wait(5)  # the first call holds its thread while the others queue up
        return [r + 100 for r in requests]

    coalescer: Coalescer[int, int] = Coalescer(
        serve,
        name="streams",
        threads=2,
        setup=lambda: set_up.append(threading.current_thread().name),
    )
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.update({0: coalescer(0)}))
    first.start()
    assert entered.wait(5)
    # the first thread is busy: the next requests start the second one, which serves them
    # while the first is still held, in groups of at most half of what was pending
    others = [
        threading.Thread(target=lambda n=n: results.update({n: coalescer(n)})) for n in range(1, 9)
    ]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(5)
    assert {n: results[n] for n in range(1, 9)} == {n: n + 100 for n in range(1, 9)}
    assert 0 not in results  # all of them served while the first was still held
    gate.set()
    first.join(5)
    assert results[0] == 100
    assert sorted(set(running)) == ["streams-1", "streams-2"]
    assert sorted(set_up) == ["streams-1", "streams-2"]
    assert sorted(n for group in groups for n in group) == list(range(9))


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(lambda rs: list(rs), name="none", threads=0)


def test_a_request_over_the_group_limit_is_still_served() -> None:
    groups: list[int] = []
    coalescer: Coalescer[list[int], int] = Coalescer(
        lambda rs: [groups.append(len(rs)) or len(r) for r in rs], name="test", limit=5, size=len
    )
    assert coalescer([1] * 9) == 9  # one request alone may be over the limit


def pending(note: str, created: int) -> Pending:
    job = Job("u", note, f"text at {created}", created, 1)
    message = Message(f"m{note}{created}", f"r{note}{created}", job.to_body(), 1, 0.0)
    return Pending(message, job, records.record_id("u", note, 1))


def record(item: Pending) -> VectorRecord:
    meta = {"userId": "u", "noteId": item.job.note_id, "version": 1, "created": item.job.created}
    return VectorRecord(item.id, [1.0] + [0.0] * 7, meta)


def written(access: IndexAccess, index: MemoryIndex, snapshot: Snapshot, *items: Pending):  # type: ignore[no-untyped-def]
    return access.write(index, snapshot, [(record(item), item, PROCESSED) for item in items], [])


@pytest.mark.parametrize("order", ["newer first", "older first"])
def test_gathered_writes_keep_the_newest_edit_of_a_note(order: str) -> None:
    """Two batches read the note before either wrote it (neither read sees the other's edit);
    their writes are gathered into one upsert, and the newer edit is what is stored."""
    index = MemoryIndex()
    access = IndexAccess()
    access.backlog(True)
    old, new = pending("n1", 5), pending("n1", 9)
    first, second = (new, old) if order == "newer first" else (old, new)
    snapshots = [access.read(index, [first.id]), access.read(index, [second.id])]
    futures = [
        written(access, index, snapshots[0], first),
        written(access, index, snapshots[1], second),
    ]
    for snapshot in snapshots:
        access.release(snapshot)
    assert not any(f.done() for f in futures)  # gathering while there is a backlog
    access.flush()
    results = [f.result(timeout=10) for f in futures]
    stored = index.records[new.id]
    assert records.created_of(stored.metadata) == 9
    outcomes = {item.job.created: kind for (done, _, _) in results for item, kind in done}
    if order == "newer first":
        assert outcomes == {9: PROCESSED, 5: SKIPPED}
    else:
        assert outcomes == {5: PROCESSED, 9: PROCESSED}
    assert len(index.upserts) == 1  # one call for the generation, counted with its first request
    assert [calls for (_, _, calls) in results] == [(1,), ()]


def test_a_skip_waits_for_the_newer_edit_to_be_stored() -> None:
    """A batch whose job is older than an edit another batch handed over, not yet stored, is
    told it is done only once that edit is stored (its message must outlive the edit's)."""
    index = MemoryIndex()
    access = IndexAccess()
    access.backlog(True)
    new, old = pending("n1", 9), pending("n1", 5)
    first = written(access, index, access.read(index, [new.id]), new)
    second = written(access, index, access.read(index, [old.id]), old)
    assert not second.done()
    access.flush()
    assert second.result(timeout=10)[0] == [(old, SKIPPED)]
    assert first.done() and new.id in index.records


def test_a_failed_store_fails_the_batches_that_skipped_against_it() -> None:
    index = MemoryIndex()
    access = IndexAccess()
    access.backlog(True)
    new, old = pending("n1", 9), pending("n1", 5)
    first = written(access, index, access.read(index, [new.id]), new)
    second = written(access, index, access.read(index, [old.id]), old)
    index.down = True
    access.flush()
    with pytest.raises(VectorIndexError):
        first.result(timeout=10)
    with pytest.raises(VectorIndexError):
        second.result(timeout=10)
    index.down = False
    assert index.records == {}
    # the failed decision is forgotten: the older edit, sent again, is stored
    again = written(access, index, access.read(index, [old.id]), old)
    access.flush()
    assert again.result(timeout=10)[0] == [(old, PROCESSED)]


def test_the_same_edit_written_by_two_batches_is_stored_once() -> None:
    """A duplicate delivery embedded by two batches at once: the second finds the very same
    edit stored (same hashes, model and time) and writes nothing; a forced job still writes."""
    index = MemoryIndex()
    access = IndexAccess()
    a, b = pending("n1", 5), pending("n1", 5)
    for item in (a, b):
        item.source = "s" * 8
    rec_a, rec_b = record(a), record(b)
    for rec in (rec_a, rec_b):
        rec.metadata.update({records.SOURCE: "s" * 8, records.HASH: "h" * 8, records.MODEL: "m"})

    def write(rec: VectorRecord, item: Pending):  # type: ignore[no-untyped-def]
        snapshot = access.read(index, [item.id])
        try:
            return access.write(index, snapshot, [(rec, item, PROCESSED)], []).result(timeout=10)
        finally:
            access.release(snapshot)

    first, second = write(rec_a, a), write(rec_b, b)
    assert [kind for (done, _, _) in (first, second) for _, kind in done] == [PROCESSED, SKIPPED]
    assert len(index.upserts) == 1

    forced = pending("n1", 5)
    forced.job = Job("u", "n1", "text at 5", 5, 1, force=True)
    write(rec_b, forced)
    assert len(index.upserts) == 2
