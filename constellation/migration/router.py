"""The app-side router: the app calls this instead of writing to or searching a system directly.

Writes follow the state's ``write_mode``: ``old`` (legacy only), ``dual`` (both: the new side is
a job on the queue), ``new`` (queue only). In dual mode a failure on one side is logged and
counted, never raised, like the app's own try/except around each system today; only when both
sides fail does the caller get an error.

Searches follow ``read_traffic``, sticky per user: a stable hash of the userId places each user
at a point in [0, 1), and users below the traffic share are served by the new system. Raising
the share only moves users from old to new, never back. While both systems run (write mode
``dual``, from parallel write to cutover) both are searched at once and a comparison is logged. The candidate (new)
never hurts the user: if it errors or is slower than ``shadow_timeout`` when it should serve,
the old system's answer is served instead; as a shadow it is never waited for at all.

An old-system failure that reaches the caller is raised as :class:`Unavailable` naming the
old system (the adapter's error as its cause), so the HTTP service answers it with a 503 and
the app can tell which side failed.

State is cached for ``traffic.state_refresh`` seconds: a rollback reaches every router within
that bound (the documented staleness).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass

from constellation.errors import Unavailable
from constellation.ledger.comparisons import Comparison, ComparisonLog, overlap
from constellation.ledger.state import MigrationState, StateStore
from constellation.migration.legacy.port import LegacySystem, write_notes
from constellation.migration.source import Note
from constellation.producer import job_message
from constellation.query import SearchResult, require_user
from constellation.queues.port import Queue

log = logging.getLogger("constellation.router")

Search = Callable[[str, str, int], list[SearchResult]]


def bucket(user_id: str) -> float:
    """The user's stable place in [0, 1): the same on every machine and every run."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def serves_new(user_id: str, read_traffic: float) -> bool:
    return bucket(user_id) < read_traffic


class Router:
    def __init__(
        self,
        state: StateStore,
        legacy: LegacySystem,
        queue: Callable[[], Queue],
        new_search: Search,
        comparisons: ComparisonLog,
        *,
        shadow_timeout: float = 2.0,
        state_refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_shadows: int = 4,
    ) -> None:
        self.state_store = state
        self.legacy = legacy
        # The queue is opened at the first write that needs it: in write mode old the app's
        # writes never touch the queue, so they work before `provision` has created it.
        self._open_queue = queue
        self._queue: Queue | None = None
        self.new_search = new_search
        self.comparisons = comparisons
        self.shadow_timeout = shadow_timeout
        self.state_refresh = state_refresh
        self.clock = clock
        self.wall_clock = wall_clock
        self.counters: Counter[str] = Counter()
        self._pool = ThreadPoolExecutor(max_shadows, thread_name_prefix="router")
        self._slots = threading.BoundedSemaphore(max_shadows)
        #: searches running on the shadow pool, and a condition to wait for none
        self._running = 0
        self._idle = threading.Condition()
        self._cached: tuple[float, MigrationState] | None = None
        self._lock = threading.Lock()

    @property
    def queue(self) -> Queue:
        """The embed queue, opened on first use."""
        if self._queue is None:
            self._queue = self._open_queue()
        return self._queue

    def _count(self, name: str, n: int = 1) -> None:
        # The app calls the router from many threads; Counter's += is not atomic.
        with self._lock:
            self.counters[name] += n

    # state, cached -------------------------------------------------------------------------
    def state(self) -> MigrationState:
        """The migration state, read again when older than ``state_refresh`` seconds."""
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.state_refresh:
                self._cached = (now, self.state_store.read())
            return self._cached[1]

    def refresh(self) -> None:
        """Forget the cached state (the next call reads it)."""
        with self._lock:
            self._cached = None

    # writes ----------------------------------------------------------------------------------
    def write(self, note: Note) -> WriteOutcome:
        """Store a note in the system(s) the write mode names. In dual mode one side failing
        is counted and named in the outcome, not raised; only both sides failing raises."""
        return self.write_many([note])

    def write_many(self, notes: Sequence[Note]) -> WriteOutcome:
        """Store several notes as :meth:`write` does, in one call to each system (an
        importer's batch: the old system embeds them in one model call)."""
        state = self.state()
        mode = state.write_mode
        if not notes:
            return WriteOutcome(mode, ())
        if mode == "old":
            self._legacy_write(notes)
            return WriteOutcome(mode, ("old",))
        if mode == "new":
            self._enqueue(notes, state)
            return WriteOutcome(mode, ("new",))
        written: list[str] = []
        failed: list[str] = []
        for side, action in (
            ("old", lambda: self._legacy_write(notes)),
            ("new", lambda: self._enqueue(notes, state)),
        ):
            try:
                action()
            except Exception as exc:
                failed.append(side)
                self._count(f"write_{side}_failed", len(notes))
                log.warning(
                    "dual write: %s side failed for note(s) %s: %s",
                    side,
                    ", ".join(note.id for note in notes[:5]) + (" ..." if len(notes) > 5 else ""),
                    exc,
                    extra={"event": "dual_write_failed", "side": side},
                )
                if len(failed) == 2:
                    raise
            else:
                written.append(side)
        self._count("writes", len(notes))
        return WriteOutcome(mode, tuple(written), tuple(failed))

    def _legacy_write(self, notes: Sequence[Note]) -> None:
        with _old_system():
            write_notes(self.legacy, list(notes))

    def _legacy_search(self, text: str, user_id: str, top_k: int) -> list[SearchResult]:
        with _old_system():
            return list(self.legacy.search(text, user_id, top_k))

    def _enqueue(self, notes: Sequence[Note], state: MigrationState) -> None:
        jobs = [job_message(n.job(v)) for n in notes for v in state.write_versions]
        result = self.queue.send_batch(jobs)
        if result.failed:
            raise RuntimeError(f"enqueue failed: {next(iter(result.failed.values()))}")

    # searches --------------------------------------------------------------------------------
    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's results from the system that serves them; the other side is a shadow."""
        return self.route(text, user_id, top_k).results

    def route(self, text: str, user_id: str, top_k: int = 10) -> Routed:
        """:meth:`search`, saying which system served the answer."""
        require_user(user_id)
        state = self.state()
        use_new = serves_new(user_id, state.read_traffic)
        self._count("searches")
        if state.write_mode != "dual":  # only one system holds current data
            if use_new:
                return Routed(self.new_search(text, user_id, top_k), "new")
            return Routed(self._legacy_search(text, user_id, top_k), "old")
        if use_new:
            return self._new_first(text, user_id, top_k, state)
        return self._old_first(text, user_id, top_k, state)

    def _old_first(self, text: str, user_id: str, top_k: int, state: MigrationState) -> Routed:
        """Serve the old system; the new one runs beside it and is never waited for."""
        new = self._submit(self.new_search, text, user_id, top_k)
        old = _run(self._legacy_search, text, user_id, top_k)
        if new is not None:
            self._compare_later(state, "old", _done(old), new)
        if old.error is not None:
            raise old.error
        return Routed(old.results or [], "old")

    def _new_first(self, text: str, user_id: str, top_k: int, state: MigrationState) -> Routed:
        """Serve the new system unless it errors or is too slow; then the old one answers."""
        new = self._submit(self.new_search, text, user_id, top_k)
        old = self._submit(self._legacy_search, text, user_id, top_k)
        if new is None or old is None:  # shadow pool saturated: the trusted system serves
            outcome = _run(self._legacy_search, text, user_id, top_k)
            if outcome.error is not None:
                raise outcome.error
            return Routed(outcome.results or [], "old")
        try:
            answer: _Outcome | None = new.result(timeout=self.shadow_timeout)
        except FutureTimeout:
            answer = None
        if answer is not None and answer.error is None:
            self._compare_later(state, "new", old, new)
            return Routed(answer.results or [], "new")
        self._count("fallback_to_old")
        fallback: _Outcome = old.result()
        self._compare_later(state, "old", old, new)
        if fallback.error is not None:
            raise fallback.error
        return Routed(fallback.results or [], "old")

    def _submit(self, fn: Search, text: str, user_id: str, top_k: int) -> Future[_Outcome] | None:
        """Run a search on the shadow pool; None (and counted) when the pool is saturated."""
        if not self._slots.acquire(blocking=False):
            self._count("shadow_dropped")
            return None
        with self._idle:
            self._running += 1
        future = self._pool.submit(_run, fn, text, user_id, top_k)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: Future[_Outcome]) -> None:
        self._slots.release()
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    def wait_for_shadows(self, timeout: float | None = None) -> bool:
        """Wait until no shadow search runs (an app, or the demo, that would rather compare
        every search than outrun its shadows); False if some still run after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def _compare_later(
        self, state: MigrationState, served: str, old: Future[_Outcome], new: Future[_Outcome]
    ) -> None:
        """Log the comparison once both sides have answered, off the caller's path."""
        remaining = [2]
        lock = threading.Lock()

        def one_done(_: Future[_Outcome]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            try:
                self.comparisons.record(self._comparison(state, served, old.result(), new.result()))
            except Exception:
                log.exception("could not record a comparison", extra={"event": "comparison_error"})

        old.add_done_callback(one_done)
        new.add_done_callback(one_done)

    def _comparison(
        self, state: MigrationState, served: str, old: _Outcome, new: _Outcome
    ) -> Comparison:
        new_error = _describe(new.error)
        if new_error is None and new.ms > self.shadow_timeout * 1000:
            new_error = "timeout"  # answered, but too late to have served anyone
        old_error = _describe(old.error)
        both = new_error is None and old_error is None
        return Comparison(
            at=self.wall_clock(),
            served=served,
            traffic=state.read_traffic,
            overlap=overlap(_ids(old.results), _ids(new.results)) if both else None,
            old_count=None if old.results is None else len(old.results),
            new_count=None if new.results is None else len(new.results),
            old_ms=old.ms,
            new_ms=new.ms,
            old_error=old_error,
            new_error=new_error,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class Routed:
    """A routed search's answer and the system that served it."""

    results: list[SearchResult]
    served_by: str  # "old" | "new"


@dataclass(frozen=True)
class WriteOutcome:
    """Where a routed write went: the write mode, the sides written and the sides that failed."""

    write_mode: str
    written: tuple[str, ...]
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Outcome:
    results: list[SearchResult] | None
    ms: float
    error: Exception | None


@contextmanager
def _old_system() -> Iterator[None]:
    """The old system's failures named as its own (the HTTP service answers 503 "old system"),
    the adapter's error kept as the cause."""
    try:
        yield
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable("old system", f"the old system failed: {exc}") from exc


def _run(fn: Search, text: str, user_id: str, top_k: int) -> _Outcome:
    """Call one system's search, timing it and keeping its error instead of raising."""
    started = time.perf_counter()
    try:
        results = list(fn(text, user_id, top_k))
    except Exception as exc:
        return _Outcome(None, (time.perf_counter() - started) * 1000, exc)
    return _Outcome(results, (time.perf_counter() - started) * 1000, None)


def _done(outcome: _Outcome) -> Future[_Outcome]:
    future: Future[_Outcome] = Future()
    future.set_result(outcome)
    return future


def _describe(error: Exception | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def _ids(results: list[SearchResult] | None) -> list[str]:
    return [r.note_id for r in results or []]
