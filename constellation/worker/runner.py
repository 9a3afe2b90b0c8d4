"""The batching consumer: receive, batch, process with bounded concurrency, keep messages hidden.

* A batch closes at ``max_batch_size`` jobs or ``max_batch_timeout`` seconds after its first
  job, whichever comes first (``--drain`` also closes a partial batch once the queue is empty).
* Up to ``max_concurrency`` batches are being received, read and embedded at once: while one
  batch is in the model, the next is being received, validated and tokenized. A batch then
  hands its records over to be stored (gathered with other batches' while the worker has a
  backlog, see :mod:`.write_behind`) and frees its place; its messages stay held (hidden) until
  its records are stored, and are deleted then.
* A heartbeat keeps every held message invisible (``change_visibility``) while it is still being
  worked on, so a slow batch or a long wait for the model never causes a duplicate delivery.
* The consumer switch (migration state) is read before each receive: while it is off, nothing
  new is received; in-flight batches finish; the worker waits (``--drain`` exits instead).
* While an embedding provider is unavailable (its circuit breaker is open), nothing new is
  received: the jobs wait on the queue, not in the dead-letter queue. The loop probes the
  provider every ``probe_interval`` and resumes by itself once it answers.
* :meth:`Worker.stop` (SIGINT/SIGTERM) stops receiving, releases a batch still being collected,
  lets in-flight batches finish, and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from constellation.embedders.port import Upstream
from constellation.errors import ConstellationError, DamagedFile
from constellation.queues.port import Message, Queue, QueueDepth
from constellation.worker.control import AlwaysEnabled, ConsumerSwitch, HeldMessages
from constellation.worker.events import WorkerStats
from constellation.worker.in_flight import Started
from constellation.worker.process import BatchProcessor
from constellation.worker.settings import RunSummary, WorkerSettings, WorkerStatus

log = logging.getLogger("constellation.worker")


class Worker:
    """Drains ``queue`` through ``processor``. Thread-safe :meth:`stop`; :meth:`run` blocks."""

    def __init__(
        self,
        queue: Queue,
        processor: BatchProcessor,
        settings: WorkerSettings,
        *,
        stats: WorkerStats | None = None,
        switch: ConsumerSwitch | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_status: Callable[[WorkerStatus], None] | None = None,
        status_interval: float = 1.0,
        upstreams: Sequence[Upstream] = (),
    ) -> None:
        self.queue = queue
        #: embedding providers every job may need: while one is out, nothing is received
        self.upstreams = tuple(upstreams)
        self._paused_for: float | None = None  # since when (clock) a provider is out
        self.processor = processor
        self.settings = settings
        self.stats = stats or WorkerStats()
        self.switch = switch or AlwaysEnabled()
        self.clock = clock
        self.on_status = on_status
        self.status_interval = status_interval
        self._stop = threading.Event()
        self._held = HeldMessages()
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._in_flight = 0
        self._changed = threading.Condition()
        self._enabled = True
        self._switch_read_at: float | None = None
        self._zero_readings = 0
        self._exact = False  # the queue's depth is exact (learned at the start of a drain)
        self._depth: QueueDepth | None = None
        self._acks: ThreadPoolExecutor  # acknowledges stored batches, set by run()
        #: a damaged file of ours met by a batch: retrying cannot help, so the run stops
        self._damaged: DamagedFile | None = None

    def stop(self) -> None:
        """Stop receiving; in-flight batches finish. Safe from signal handlers and threads."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    # the loop --------------------------------------------------------------------------------
    def run(self, *, drain: bool = False, max_messages: int | None = None) -> RunSummary:
        """Consume until stopped (or, with ``drain``, until the queue is empty and nothing is in
        flight; with ``max_messages``, until that many messages were received and handled)."""
        summary = RunSummary()
        if drain:
            # An exact depth (SQLite) needs no short waits in the drain's receives: an empty
            # receive is empty. SQS's can return nothing while messages wait elsewhere.
            try:
                self._exact = self.queue.depth().exact
            except ConstellationError:
                self._exact = False
        heartbeat = threading.Thread(target=self._heartbeat, name="visibility", daemon=True)
        heartbeat.start()
        futures: list[Future[None]] = []
        try:
            with (
                ThreadPoolExecutor(self.settings.max_concurrency, "batch") as pool,
                ThreadPoolExecutor(2, "acknowledge") as self._acks,
            ):
                summary.reason = self._loop(pool, futures, summary, drain, max_messages)
                self.processor.backlog(False)  # store what is gathered now
                for future in futures:
                    future.result()
                with self._changed:
                    while self._in_flight:
                        self._changed.wait(0.5)
        finally:
            self._stop.set()
            self.processor.backlog(False)
            heartbeat.join(timeout=5)
        summary.stats = self.stats.snapshot()
        self._report()
        if self._damaged is not None:
            raise self._damaged
        return summary

    def _loop(
        self,
        pool: ThreadPoolExecutor,
        futures: list[Future[None]],
        summary: RunSummary,
        drain: bool,
        max_messages: int | None,
    ) -> str:
        while not self._stop.is_set():
            if max_messages is not None and summary.received >= max_messages:
                return "max-messages"
            if not self._consumer_enabled():
                self.processor.backlog(False)  # nothing more comes: store what is gathered
                if drain and self._in_flight == 0:
                    return "consumer disabled"
                self._wait(self.settings.poll_interval)
                continue
            if not self._upstreams_available():
                self.processor.backlog(False)
                # A drain waits too: the outage ends by itself, and the jobs are still there.
                self._wait(self.settings.poll_interval)
                continue
            if not self._acquire_slot():
                break
            limit = self.settings.max_batch_size
            if max_messages is not None:
                limit = min(limit, max_messages - summary.received)
            batch = self._collect(limit, drain)
            # a short batch: the queue is running dry, so gathered writes are stored at once
            self.processor.backlog(len(batch) >= self.settings.max_batch_size)
            if not batch:
                self._slots.release()
                if drain and self._drained():
                    return "drained"
                if drain:
                    self._wait(min(self.settings.poll_interval, 0.2))
                continue
            summary.received += len(batch)
            summary.batches += 1
            with self._changed:
                self._in_flight += 1
            futures.append(pool.submit(self._process, batch))
            futures[:] = [f for f in futures if not f.done()]
        return "stopped"

    def _consumer_enabled(self) -> bool:
        """The consumer switch, read at most once per poll interval."""
        now = self.clock()
        if (
            self._switch_read_at is None
            or now - self._switch_read_at >= self.settings.poll_interval
        ):
            try:
                self._enabled = self.switch.consumer_enabled()
            except ConstellationError as exc:
                # Unreadable state: keep the last known value rather than stop or run wild.
                log.warning(
                    "cannot read the consumer switch: %s", exc, extra={"event": "switch_error"}
                )
            self._switch_read_at = now
        return self._enabled

    def _upstreams_available(self) -> bool:
        """Every provider serves (each one out is probed here when its probe is due); says so
        in the log when receiving stops and when it resumes."""
        available = all([upstream.available() for upstream in self.upstreams])
        outage = None if available else self._outage()
        if outage is not None and self._paused_for is None:
            log.warning(
                "%s; not receiving (the jobs wait on the queue), probing until it answers",
                outage,
                extra={"event": "provider_unavailable"},
            )
        elif available and self._paused_for is not None:
            log.warning(
                "the embedding provider answers again; resuming after %.0fs",
                self.clock() - self._paused_for,
                extra={"event": "provider_back"},
            )
        if available:
            self._paused_for = None
        elif self._paused_for is None:
            self._paused_for = self.clock()
        return available

    def _outage(self) -> str | None:
        """Why receiving is paused (the first provider out), without probing."""
        return next((o for u in self.upstreams if (o := u.outage()) is not None), None)

    def _acquire_slot(self) -> bool:
        while not self._stop.is_set():
            if self._slots.acquire(timeout=self.settings.poll_interval):
                return True
        return False

    def _collect(self, limit: int, drain: bool) -> list[Message]:
        """Receive one batch: closes at ``limit`` jobs or the batch timeout after the first."""
        s = self.settings
        batch: list[Message] = []
        opened: float | None = None
        while len(batch) < limit and not self._stop.is_set():
            if not self._consumer_enabled() or self._outage() is not None:
                break  # switched off, or a provider out: process what is held, take no more
            now = self.clock()
            if opened is not None and now - opened >= s.max_batch_timeout:
                break
            wait = (
                s.wait_time
                if opened is None
                else min(s.wait_time, opened + s.max_batch_timeout - now)
            )
            if drain:
                # Draining: short looks, and none at all once the queue has looked empty, so
                # the run ends soon after its last batch instead of a long poll later.
                wait = 0.0 if self._zero_readings or self._exact else min(wait, 0.2)
            elif self._in_flight:
                # Do not sit in a long poll while batches complete.
                wait = min(wait, s.poll_interval)
            try:
                received = self.queue.receive(
                    max_messages=limit - len(batch),
                    wait_seconds=max(0.0, wait),
                    visibility_timeout=s.visibility_timeout,
                )
            except ConstellationError as exc:
                log.warning("receive failed: %s", exc, extra={"event": "receive_error"})
                self._wait(s.poll_interval)
                break
            if received:
                self._held.add(received, self.clock() + s.visibility_timeout)
                opened = self.clock() if opened is None else opened
                batch.extend(received)
            elif opened is None or drain:
                break
        if self._stop.is_set() and batch:
            self._release(batch)
            return []
        return batch

    def _process(self, batch: list[Message]) -> None:
        """Read, embed and hand over one batch, then free its place; its messages are
        acknowledged once its records are stored (:meth:`_finish`, on another thread)."""
        try:
            started = self.processor.start(batch)
        except DamagedFile as exc:
            self._stop_damaged(exc)
            self._done(batch)
            self._slots.release()
            return
        except Exception:
            # Nothing was acknowledged that was not stored; the queue will redeliver the rest.
            log.exception("batch failed unexpectedly", extra={"event": "batch_error"})
            self._done(batch)
            self._slots.release()
            return
        self._slots.release()
        stored = started.stored
        remaining = [len(stored)]
        lock = threading.Lock()

        def written(_: object) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._acks.submit(self._finish, batch, started)

        if not stored:
            self._finish(batch, started)
        for future in stored:
            future.add_done_callback(written)

    def _finish(self, batch: list[Message], started: Started) -> None:
        try:
            result = self.processor.finish(started)
            log.info(
                "batch of %d: %d stored, %d skipped, %d rejected, %d failed%s",
                len(batch),
                result.stored,
                result.skipped + result.empty,
                result.rejected,
                result.failed,
                f", {result.deferred} given back (provider unavailable)" if result.deferred else "",
                extra={
                    "event": "batch",
                    "size": len(batch),
                    "stored": result.stored,
                    "skipped": result.skipped,
                    "empty": result.empty,
                    "rejected": result.rejected,
                    "failed": result.failed,
                    "dead_lettered": result.dead_lettered,
                    "deferred": result.deferred,
                    "model_ms": round(
                        (result.timing.model_seconds if result.timing else 0) * 1000, 1
                    ),
                },
            )
        except DamagedFile as exc:
            self._stop_damaged(exc)
        except Exception:
            log.exception("batch failed unexpectedly", extra={"event": "batch_error"})
        finally:
            self._done(batch)

    def _stop_damaged(self, exc: DamagedFile) -> None:
        """Stop the run on a damaged file: every batch would meet it again, each visibility
        timeout, for ever. Nothing was acknowledged; the queue keeps every job."""
        log.error("%s", exc.message, extra={"event": "damaged_file", "path": exc.path})
        self._damaged = self._damaged or exc
        self.stop()

    def _done(self, batch: list[Message]) -> None:
        self._held.remove(batch)
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def _drained(self) -> bool:
        """Nothing in flight here and the queue empty: on one reading of an exact depth (a
        SQLite file), on two in a row otherwise (SQS depths are approximate and can lag, so
        one zero is not trusted on its own)."""
        if self._in_flight:
            self._zero_readings = 0
            return False
        self._depth = self.queue.depth()
        self._exact = self._depth.exact
        self._zero_readings = 0 if self._depth.total else self._zero_readings + 1
        return self._zero_readings >= (1 if self._exact else 2)

    def _release(self, batch: list[Message]) -> None:
        """Give messages back to the queue at once (visibility 0) instead of waiting them out."""
        self._held.remove(batch)
        try:
            self.queue.change_visibility_batch([m.receipt for m in batch], 0)
        except ConstellationError as exc:
            log.warning("could not release %d messages: %s", len(batch), exc)

    def _wait(self, seconds: float) -> None:
        with self._changed:
            self._changed.wait(timeout=seconds)

    # the heartbeat -----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        vt = self.settings.visibility_timeout
        tick = max(0.1, min(vt / 4, self.status_interval))
        last_status = 0.0
        while not self._stop.wait(tick):
            self._held.extend(self.queue, self.clock(), vt)
            if self.on_status and self.clock() - last_status >= self.status_interval:
                last_status = self.clock()
                self._report()
        self._held.extend(self.queue, self.clock(), vt)

    def _report(self) -> None:
        if self.on_status is None:
            return
        with suppress(ConstellationError):  # keep showing the last depth we read
            self._depth = self.queue.depth()
        self.on_status(
            WorkerStatus(
                stats=self.stats.snapshot(),
                in_flight_batches=self._in_flight,
                held_messages=len(self._held),
                queue_depth=self._depth,
                consumer_enabled=self._enabled,
                outage=self._outage(),
            )
        )
