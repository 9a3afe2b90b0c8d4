"""The verify checklist's round trip: a test job for a reserved user enqueued, stored by a
worker, found by a query, and removed again, with whatever verify leaves cleaned up (see
:mod:`phases.operate.verify`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from constellation import records
from constellation.errors import ConstellationError, QueueError
from constellation.index.port import VectorIndex
from constellation.jobs import Job, ids_of
from constellation.plan import Plan
from constellation.producer import job_message
from constellation.query import SearchResult, search
from constellation.queues.port import Queue
from constellation.services import Services
from constellation.worker import build_worker, settings_from_plan
from constellation.worker.control import ConsumerSwitch

#: the user id of verification jobs; no real user may have it
VERIFY_USER = "__constellation_verify__"
VERIFY_TEXT = "Constellation deployment check: the quick brown fox jumps over the lazy dog."
#: records one check (its name, whether it passed, what was seen); returns whether it passed
Record = Callable[[str, bool, str], bool]


def embedded(plan: Plan) -> bool:
    """The embedded default: a SQLite queue and an index folder, one writing process."""
    return plan.queue.adapter == "sqlite" and plan.index.url is None


class RoundTrip:
    """The round trip: clean up, enqueue, stored, found, removed, and always clean up."""

    def __init__(
        self,
        plan: Plan,
        services: Services,
        switch: ConsumerSwitch,
        inline: bool,
        record: Record,
    ) -> None:
        self.plan = plan
        self.services = services
        self.switch = switch
        self.inline = inline
        self.record = record
        self.version = plan.default_version
        self.note = f"verify-{uuid.uuid4().hex[:12]}"
        self.text = f"{VERIFY_TEXT} ({self.note})"
        self.record_id = records.record_id(VERIFY_USER, self.note, self.version)
        #: whether this process may delete from the index (else the worker empties records)
        self.writes_index = services.write or plan.index.url is not None
        self.how = "in-process worker" if inline else "running worker"
        #: the test job was stored (so a worker took it off the queue)
        self.stored = False

    @property
    def index(self) -> VectorIndex:
        return self.services.index(self.version)

    @property
    def queue(self) -> Queue:
        return self.services.queue

    def run(self, timeout: float, take_timeout: float) -> None:
        if not self.switch.consumer_enabled():
            self.record(
                "round trip",
                False,
                "the consumer is disabled: no worker takes jobs; "
                "run `constellation consumer enable` first",
            )
            return
        worker = None
        runner = None
        if self.inline:
            # In-process, close batches at once: the check should not wait out max_batch_timeout.
            quick = replace(settings_from_plan(self.plan), max_batch_timeout=0.2, wait_time=0.2)
            worker = build_worker(self.plan, self.services, switch=self.switch, settings=quick)
            runner = threading.Thread(target=worker.run, name="verify-worker", daemon=True)
        try:
            self._clean_up_orphans()
            if runner is not None:
                runner.start()
            self._trip(timeout, take_timeout)
        except ConstellationError as exc:
            self.record("round trip", False, str(exc))
        finally:
            if worker is not None and runner is not None and runner.is_alive():
                worker.stop()
                runner.join(timeout=30)
            self._clean_up()

    def _trip(self, timeout: float, take_timeout: float) -> None:
        created = int(time.time() * 1000)
        _send(self.services, Job(VERIFY_USER, self.note, self.text, created, self.version))
        self.record("test job enqueued", True, f"note {self.note} for user {VERIFY_USER}")
        if not self.inline and not _wait(self._taken, take_timeout):
            self.record(
                "taken by a worker",
                False,
                f"no worker took the test job within {take_timeout:.0f}s: start one with "
                "`constellation worker run`"
                + ("" if embedded(self.plan) else " (against this plan's queue and index)")
                + ", or run the check in-process with `constellation verify --inline`",
            )
            return
        if not _wait(self._stored, timeout):
            self.record(
                "stored by the worker",
                False,
                f"not stored within {timeout:.0f}s by the {self.how}; see `constellation stats`",
            )
            return
        self.stored = True
        self.record("stored by the worker", True, f"by the {self.how}")
        hits = self._query()
        found = bool(hits) and hits[0].note_id == self.note
        self.record(
            "found by a query",
            found,
            f"top score {hits[0].score:.3f}"
            + ("" if found else f" for note {hits[0].note_id}, not {self.note}")
            if hits
            else "no results",
        )

    def _taken(self) -> bool:
        """A worker is consuming: the record is stored, or something is in flight."""
        return self._stored() or self.queue.depth().in_flight > 0

    def _stored(self) -> bool:
        return self.record_id in self.index.get([self.record_id])

    def _query(self) -> list[SearchResult]:
        def run() -> list[SearchResult]:
            return search(
                self.text,
                user_id=VERIFY_USER,
                index=self.index,
                embedder=self.services.embedder(self.version),
                top_k=3,
            )

        if self.writes_index:
            return run()
        # Reading an embedded folder beside its writer can fail while the writer has not
        # flushed its segment yet; a few tries give it the moment it needs.
        for attempt in range(4):
            try:
                return run()
            except ConstellationError:
                if attempt == 3:
                    raise
                time.sleep(0.5)
        return []

    # cleaning up ---------------------------------------------------------------------------
    def _verify_records(self) -> dict[str, tuple[str, int]]:
        """Every record of the verify user (this run's and orphans): id → (note, created)."""
        vector = self.services.embedder(self.version).embed([VERIFY_TEXT])[0]
        hits = self.index.query(vector, user_id=VERIFY_USER, top_k=100)
        return {
            h.id: (str(h.metadata.get(records.NOTE, "")), records.created_of(h.metadata))
            for h in hits
        }

    def _clean_up_orphans(self) -> None:
        found = self._verify_records()
        if found:
            self._remove(found, wait=False)
            self.record("leftovers of an earlier run", True, f"removed {len(found)} test record(s)")

    def _clean_up(self) -> None:
        """Remove this run's job (if it was never stored, it may still be queued) and every
        verify record."""
        left = 0 if self.stored else remove_jobs(self.queue, VERIFY_USER)
        found = self._verify_records()
        removed = self._remove(found, wait=True) if found else True
        detail = "removed" if removed else "still present"
        if left > 0:
            detail += f"; the test job was taken back off the queue ({left})"
        elif left < 0:
            removed = False
            detail += (
                "; the test job is still queued behind a backlog: a worker will store it, and "
                "the next `constellation verify` removes the record"
            )
        self.record(
            "test record removed" if found or self.stored else "nothing left behind",
            removed,
            detail,
        )

    def _remove(self, found: dict[str, tuple[str, int]], *, wait: bool) -> bool:
        """Delete the records, or (a running worker holds the embedded index) empty them
        through the queue; with ``wait``, until they are gone."""
        ids = list(found)
        if self.writes_index:
            self.index.delete(ids)
            return True
        for note, created in found.values():
            _send(self.services, Job(VERIFY_USER, note, "", created + 1, self.version))
        if not wait:
            return True
        return _wait(lambda: not self.index.get(ids), 30.0)


def remove_jobs(queue: Queue, user_id: str, limit: int = 100) -> int:
    """Take a user's jobs back off the queue: how many were removed, or -1 when the queue holds
    more than ``limit`` messages (then nothing is touched: looking would cost every queued job
    one of its receives, which count towards the dead-letter queue). Every other message seen
    is released at once."""
    if queue.depth().visible > limit:
        return -1
    seen = 0
    removed = 0
    others: list[str] = []
    while seen < limit:
        batch = queue.receive(max_messages=10, visibility_timeout=30)
        if not batch:
            break
        seen += len(batch)
        mine = [m for m in batch if ids_of(m.body)[0] == user_id]
        if mine:
            queue.delete_batch([m.receipt for m in mine])
            removed += len(mine)
        others += [m.receipt for m in batch if m not in mine]
    if others:
        queue.change_visibility_batch(others, 0)
    return removed


def _wait(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return False


def _send(services: Services, job: Job) -> None:
    """Send one job in its note's group (on a FIFO queue the removal comes after the store)."""
    result = services.queue.send_batch([job_message(job)])
    if result.failed:
        raise QueueError(f"{services.queue.name}: {result.failed[0]}")
