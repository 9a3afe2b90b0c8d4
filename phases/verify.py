"""``verify``: the deployment verification checklist, ending with a real round trip.

A test job for a reserved user is enqueued, stored by the worker (a running one, or one run
in-process with ``inline``), found by a query, then removed the same way a note is emptied: an
empty-text job for that note, so even an embedded index held by a running worker's lock is
cleaned up by that worker.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from constellation import records
from constellation.errors import ConstellationError, QueueError
from constellation.jobs import Job
from constellation.plan import Plan
from constellation.producer import job_message
from constellation.query import search
from constellation.readback import REBUILD, read_back
from constellation.services import Services
from constellation.worker import build_worker, settings_from_plan
from constellation.worker.control import ConsumerSwitch
from phases.provision import max_receive_count

#: the user id of verification jobs; no real user may have it
VERIFY_USER = "__constellation_verify__"
VERIFY_TEXT = "Constellation deployment check: the quick brown fox jumps over the lazy dog."


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    checks: list[CheckResult]

    __json_properties__ = ("passed",)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def verify(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    *,
    inline: bool = False,
    timeout: float = 120.0,
    on_check: Callable[[CheckResult], None] | None = None,
) -> VerifyReport:
    """Check plan, queues, index and model, then a round trip through the running service."""
    checks: list[CheckResult] = []

    def record(name: str, passed: bool, detail: str) -> bool:
        result = CheckResult(name, passed, detail)
        checks.append(result)
        if on_check:
            on_check(result)
        return passed

    record("plan is valid", True, f"{plan.file} ({plan.environment})")
    if inline and plan.queue.adapter == "sqlite" and plan.index.url is None:
        # Stand-alone on the embedded default: the deployment is this folder, so create
        # whatever is missing first (provisioning is idempotent).
        from phases.provision import provision

        report = provision(plan, services)
        created = [r.resource for r in report.results if r.outcome == "created"]
        record(
            "embedded resources",
            True,
            f"created {', '.join(created)}" if created else "all present",
        )
    ok = _queues(plan, services, record)
    ok = _index(plan, services, record) and _readable(plan, services, record) and ok
    ok = _model(plan, services, record) and ok
    _old_system(plan, services, record)
    if ok:
        _round_trip(plan, services, switch, inline, timeout, record)
    else:
        record("round trip", False, "skipped: fix the checks above first")
    return VerifyReport(checks)


Record = Callable[[str, bool, str], bool]


def _queues(plan: Plan, services: Services, record: Record) -> bool:
    q = plan.queue
    try:
        main = services.broker.inspect(q.name)
        dead = services.broker.inspect(q.dead_letter)
    except ConstellationError as exc:
        return record("queues reachable", False, str(exc))
    if main is None or dead is None:
        missing = [n for n, i in ((q.name, main), (q.dead_letter, dead)) if i is None]
        return record("queues reachable", False, f"missing {', '.join(missing)}; run provision")
    record("queues reachable", True, f"{q.name}, {q.dead_letter}")
    wanted = max_receive_count(plan.consumer.max_retries)
    redrive = main.redrive
    if (
        redrive is None
        or redrive.dead_letter != q.dead_letter
        or redrive.max_receive_count != wanted
    ):
        return record(
            "redrive policy", False, f"expected {q.dead_letter} after {wanted}, found {redrive}"
        )
    return record("redrive policy", True, f"{q.dead_letter} after {wanted} receives")


def _index(plan: Plan, services: Services, record: Record) -> bool:
    try:
        info = services.store.inspect(plan.index.name)
    except ConstellationError as exc:
        return record("index reachable", False, str(exc))
    if info is None:
        return record("index reachable", False, f"{plan.index.name} is missing; run provision")
    good = info.dimension == plan.index.dimensions and info.metric == plan.index.metric
    detail = f"{info.name}: {info.dimension} dims, {info.metric}, {info.count:,} records"
    return record("index dimension and metric", good, detail)


def _readable(plan: Plan, services: Services, record: Record) -> bool:
    """Each model version's vectors read back: a sample query finds its sampled record."""
    name = "index answers a sample query per version"
    results = []
    for version in sorted(plan.models):
        try:
            index = services.index(version)
            if not index.count(version=version):
                continue
        except ConstellationError:
            continue  # a missing or unreachable index is the check above
        results.append(read_back(index, version))
    failed = [r for r in results if not r.ok]
    if failed:
        detail = "; ".join(f"version {r.version}: {r.detail}" for r in failed)
        return record(name, False, f"{detail}; {REBUILD}")
    found = ", ".join(f"v{r.version}" for r in results) or "no records yet"
    return record(name, True, found)


def _model(plan: Plan, services: Services, record: Record) -> bool:
    version = plan.default_version
    try:
        vector = services.embedder(version).embed(["dimension check"])[0]
    except ConstellationError as exc:
        return record("model loads", False, str(exc))
    good = len(vector) == plan.index.dimensions
    return record("model loads", good, f"{plan.model(version).name}: {len(vector)} dims")


def _old_system(plan: Plan, services: Services, record: Record) -> bool:
    """A sample of the old index against the plan's layout (read only; nothing is created)."""
    from constellation.migration.legacy import load_legacy

    name = "old system layout"
    try:
        legacy = load_legacy(plan, services, write=False)
    except ConstellationError as exc:
        return record(name, False, str(exc))
    try:
        if not hasattr(legacy, "check_layout"):
            return record(name, True, "the old-system adapter has no check_layout(): not checked")
        check = legacy.check_layout()
    except ConstellationError as exc:
        return record(name, False, str(exc))
    finally:
        if hasattr(legacy, "close"):
            legacy.close()
    if check.sampled == 0:
        return record(name, True, f"{check.note or 'the old index is empty'}: nothing to check")
    if not check.fits:
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        return record(name, False, f"{check.problems[0]}{more}; fix legacy.layout in the plan")
    return record(name, True, f"{check.sampled} records sampled, all fit: {check.layout}")


def _round_trip(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    inline: bool,
    timeout: float,
    record: Record,
) -> None:
    version = plan.default_version
    note = f"verify-{uuid.uuid4().hex[:12]}"
    created = int(time.time() * 1000)
    record_id = records.record_id(VERIFY_USER, note, version)
    index = services.index(version)
    # In-process, close batches at once: the check should not wait out max_batch_timeout.
    quick = replace(settings_from_plan(plan), max_batch_timeout=0.2, wait_time=0.2)
    worker = build_worker(plan, services, switch=switch, settings=quick) if inline else None
    runner = threading.Thread(target=worker.run, daemon=True) if worker else None
    if runner:
        runner.start()
    try:
        _send(services, Job(VERIFY_USER, note, VERIFY_TEXT, created, version))
        record("test job enqueued", True, f"note {note} for user {VERIFY_USER}")
        how = "in-process worker" if inline else "running worker"
        if not _wait(lambda: record_id in index.get([record_id]), timeout):
            record("stored by the worker", False, f"not stored within {timeout:.0f}s by the {how}")
            return
        record("stored by the worker", True, f"by the {how}")
        hits = search(
            VERIFY_TEXT,
            user_id=VERIFY_USER,
            index=index,
            embedder=services.embedder(version),
            top_k=3,
        )
        found = bool(hits) and hits[0].note_id == note
        record(
            "found by a query", found, f"top score {hits[0].score:.3f}" if hits else "no results"
        )
        _send(services, Job(VERIFY_USER, note, "", created + 1, version))
        removed = _wait(lambda: record_id not in index.get([record_id]), timeout)
        record(
            "test record removed",
            removed,
            "emptied through the queue" if removed else "still present",
        )
    except ConstellationError as exc:
        record("round trip", False, str(exc))
    finally:
        if worker and runner:
            worker.stop()
            runner.join(timeout=30)


def _wait(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def _send(services: Services, job: Job) -> None:
    """Send one job in its note's group (on a FIFO queue the removal comes after the store)."""
    result = services.queue.send_batch([job_message(job)])
    if result.failed:
        raise QueueError(f"{services.queue.name}: {result.failed[0]}")
