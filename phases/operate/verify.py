"""``verify``: the deployment verification checklist, ending with a real round trip.

A test job for a reserved user is enqueued, stored by a worker, found by a query, and removed
again. On the embedded default the worker runs in this process unless one is already running
(another process holds the index's writer lock); elsewhere it is the running workers' job, and
verify fails within seconds, naming what to start, when none takes it.

Whatever happens, nothing of verify's stays behind: its records (this run's and any orphan of
an earlier run, found first) are deleted where this process may write the index, or emptied
through the queue by the running worker where it holds the lock; a test job nobody took is
taken back off the queue. Each run's text is its own, so a leftover can never outrank it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass

from constellation.errors import ConstellationError
from constellation.index import lock
from constellation.ledger.state import open_state
from constellation.plan import Plan
from constellation.readback import REBUILD, read_back
from constellation.services import Services
from constellation.worker.control import ConsumerSwitch
from phases.operate.provider import check_providers
from phases.operate.provision import max_receive_count
from phases.operate.verify_roundtrip import Record, RoundTrip, embedded


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


class Checklist:
    """The checks as they are made: each recorded, and told to ``on_check`` at once."""

    def __init__(self, on_check: Callable[[CheckResult], None] | None = None) -> None:
        self.checks: list[CheckResult] = []
        self.on_check = on_check

    def record(self, name: str, passed: bool, detail: str) -> bool:
        """Record one check; returns whether it passed."""
        result = CheckResult(name, passed, detail)
        self.checks.append(result)
        if self.on_check:
            self.on_check(result)
        return passed


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
    switch: ConsumerSwitch | None = None,
    *,
    inline: bool = False,
    timeout: float = 120.0,
    take_timeout: float = 10.0,
    on_check: Callable[[CheckResult], None] | None = None,
) -> VerifyReport:
    """Check plan, queues, index and model, then a round trip through the running service.

    ``inline``: the round trip's worker runs in this process (see :func:`runs_inline`). A
    running worker must take the test job within ``take_timeout`` seconds and store it within
    ``timeout``. ``switch``: the consumer switch the round trip's worker reads (default: the
    plan's migration state, opened for this check and closed after it, whatever happens)."""
    with ExitStack() as opened:
        if switch is None:
            switch = opened.enter_context(closing(open_state(plan)))
        return _checklist(plan, services, switch, inline, timeout, take_timeout, on_check)


def _checklist(
    plan: Plan,
    services: Services,
    switch: ConsumerSwitch,
    inline: bool,
    timeout: float,
    take_timeout: float,
    on_check: Callable[[CheckResult], None] | None,
) -> VerifyReport:
    checklist = Checklist(on_check)
    checks, record = checklist.checks, checklist.record

    record("plan is valid", True, f"{plan.file} ({plan.environment})")
    if inline and plan.queue.adapter == "sqlite" and plan.index.url is None:
        # Stand-alone on the embedded default: the deployment is this folder, so create
        # whatever is missing first (provisioning is idempotent).
        from phases.operate.provision import CheckModel, provision_steps
        from phases.steps import run_steps

        # the model is checked below, with the providers: one line each, not a refusal here
        steps = [s for s in provision_steps(plan, services) if not isinstance(s, CheckModel)]
        created = [r.resource for r in run_steps(steps) if r.outcome == "created"]
        record(
            "embedded resources",
            True,
            f"created {', '.join(created)}" if created else "all present",
        )
    ok = _queues(plan, services, record)
    ok = _index(plan, services, record) and _readable(plan, services, record) and ok
    ok = _providers(plan, services, record) and ok
    ok = _model(plan, services, record) and ok
    _old_system(plan, services, record)
    if ok:
        RoundTrip(plan, services, switch, inline, record).run(timeout, take_timeout)
    else:
        record("round trip", False, "skipped: fix the checks above first")
    return VerifyReport(checks)


def runs_inline(plan: Plan, inline: bool | None = None) -> bool:
    """Whether the round trip's worker runs in this process: as asked (``--inline``), else on
    the embedded default when no other process holds the index's writer lock (no worker is
    running there), else not (the running workers take it)."""
    if inline is not None:
        return inline
    return embedded(plan) and lock.holder(plan.index_path) is None


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


def _providers(plan: Plan, services: Services, record: Record) -> bool:
    """Each embedding provider: reachable, our key accepted, the plan's dimension, its
    latency and what is left of its rate limits (one line each)."""
    ok = True
    for check in check_providers(plan, services):
        ok = record(f"embedding provider v{check.version}", check.ok, check.detail) and ok
    return ok


def _model(plan: Plan, services: Services, record: Record) -> bool:
    version = plan.default_version
    if plan.model(version).backend == "http":
        return True  # the provider's check above embedded with it
    try:
        vector = services.embedder(version).embed(["dimension check"])[0]
    except ConstellationError as exc:
        return record("model loads", False, str(exc))
    good = len(vector) == plan.index.dimensions
    return record("model loads", good, f"{plan.model(version).name}: {len(vector)} dims")


def _old_system(plan: Plan, services: Services, record: Record) -> bool:
    """A sample of the old index against the plan's layout (read only; nothing is created)."""
    from constellation.migration.legacy import ChecksLayout, Closable, load_legacy

    name = "old system layout"
    try:
        legacy = load_legacy(plan, services, write=False)
    except ConstellationError as exc:
        return record(name, False, str(exc))
    try:
        if not isinstance(legacy, ChecksLayout):
            return record(name, True, "the old-system adapter has no check_layout(): not checked")
        check = legacy.check_layout()
    except ConstellationError as exc:
        return record(name, False, str(exc))
    finally:
        if isinstance(legacy, Closable):
            legacy.close()
    if check.sampled == 0:
        return record(name, True, f"{check.note or 'the old index is empty'}: nothing to check")
    if not check.fits:
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        return record(name, False, f"{check.problems[0]}{more}; fix legacy.layout in the plan")
    return record(name, True, f"{check.sampled} records sampled, all fit: {check.layout}")
