"""``constellation demo``: the whole migration on the embedded default, end to end.

It plays both roles: the app (a notes database built from Python's documentation, the old
index filled by inline embedding in the app's own layout and with the app's own, simpler text
preparation, as the plan's ``legacy`` section describes them; searches through the router, and
edits written to the app's notes table first, then through the router) and the operator
(provision, phase 1 with the worker, the consistency check, phase 2's traffic steps behind
their gates, phase 3's verification, phase 4's archive). Since the two systems prepare text
differently, their results differ a little and the gates measure a real difference. It ends
with a summary.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from constellation.errors import StateError
from constellation.migration.comparisons import percentile
from constellation.migration.router import Router
from constellation.migration.runtime import Migration
from constellation.migration.source import Note, NotesSource, create_notes_table, insert_notes
from constellation.monitoring.session import query_metrics
from constellation.plan import Plan
from constellation.services import Services
from constellation.worker import Worker
from constellation.worker_session import worker_session
from phases.drain import Drain
from phases.phase import PhaseReport, Progress
from phases.phase1 import phase1
from phases.phase2 import phase2
from phases.phase3 import phase3
from phases.phase4 import phase4
from phases.provision import provision
from phases.sample_notes import sample_notes, search_phrases


@dataclass
class DemoSummary:
    notes: int
    users: int
    migrated: int = 0
    mean_overlap: float | None = None
    old_p95_ms: float | None = None
    new_p95_ms: float | None = None
    searches: int = 0
    edits: int = 0
    errors: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    phases: list[tuple[str, str, float]] = field(default_factory=list)
    complete: bool = False


#: a file the demo leaves in its data folder, so that running it again may start afresh
DEMO_MARKER = ".constellation-demo"


def prepare_data_dir(plan: Plan, reset: bool) -> None:
    """The demo builds its own data. A folder a previous demo made is replaced; any other
    non-empty folder is refused (unless ``reset``): the demo never mixes into real data."""
    folder = plan.data_dir
    if folder.exists() and any(folder.iterdir()):
        if not (reset or (folder / DEMO_MARKER).exists()):
            raise StateError(
                f"the data folder {folder} is not empty and was not made by the demo",
                "run the demo with a plan in an empty folder, or add --reset to delete that folder first",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(
        "made by `constellation demo`; the demo replaces this folder\n"
    )


class AppTraffic:
    """The app's side during the migration: searches (and a few edits) through the router."""

    def __init__(
        self,
        router: Router,
        source: NotesSource,
        phrases: Iterator[tuple[str, str]],
        edits: list[Note],
    ) -> None:
        self.router = router
        self.source = source
        self.phrases = phrases
        self.pending_edits = edits
        self.searches = 0
        self.errors = 0
        self.edits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="app-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            user, text = next(self.phrases)
            try:
                self.router.search(text, user, 10)
                self.searches += 1
            except Exception:
                self.errors += 1
            if self.pending_edits and self.searches % 10 == 0:
                try:
                    edited = self.pending_edits.pop()
                    insert_notes(self.source, [edited])  # the app's own table first
                    self.router.write(edited)
                    self.edits += 1
                except Exception:
                    self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def demo(
    plan: Plan,
    services: Services,
    *,
    notes: int = 1500,
    users: int = 20,
    dwell: float = 3.0,
    reset: bool = False,
    on_event: Callable[[str], None] = lambda _: None,
    on_progress: Progress | None = None,
) -> DemoSummary:
    """Build a sample app, then migrate it through all four phases, with a summary at the end.

    Phase 2 runs ``--auto`` with a dwell of ``dwell`` seconds per step (a week in production)
    while the app searches and edits through the router.
    """
    started = time.monotonic()
    summary = DemoSummary(notes=notes, users=users)

    def phase_done(name: str, report: PhaseReport | None, since: float) -> None:
        outcome = "ok" if report is None or report.ok else "failed"
        summary.phases.append((name, outcome, time.monotonic() - since))
        if report is not None and not report.ok:
            raise StateError(
                f"{name}: {report.message}", report.gate.failing() if report.gate else ""
            )

    # The app as it is today -----------------------------------------------------------------
    prepare_data_dir(plan, reset)
    t = time.monotonic()
    sample = sample_notes(notes, users)
    create_notes_table(plan.source_url, plan.source.table)
    source = NotesSource.from_plan(plan)
    insert_notes(source, sample)
    on_event(f"app: {len(sample):,} notes of {users} users in {plan.source_url}")
    m = Migration(plan, services)
    legacy = m.legacy
    if hasattr(legacy, "create"):
        legacy.create()  # the app's first day: its own, empty collection
    for start in range(0, len(sample), 64):
        chunk = sample[start : start + 64]
        legacy.write_many(chunk)
        if on_progress:
            on_progress("old index (inline embedding)", len(sample), len(chunk))
    on_event(f"app: old index {plan.legacy.name} filled the old way, {legacy.count():,} vectors")
    phase_done("sample app", None, t)

    # The operator's migration ---------------------------------------------------------------
    t = time.monotonic()
    provision(plan, services)
    phase_done("provision", None, t)
    on_event("provisioned the queue, its dead-letter queue and the index")

    t = time.monotonic()
    report = phase1(m, wait=True, on_progress=on_progress)
    summary.mean_overlap = report.consistency.mean if report.consistency else None
    on_event(f"phase 1: backfilled and drained; consistency {summary.mean_overlap or 0:.3f}")
    phase_done("phase 1 parallel write", report, t)

    # From here on the service runs beside the app: a worker, and the app's searches and edits.
    with (
        query_metrics(plan, services) as observe,
        worker_session(plan, services, m.state, failures=m.failures) as worker,
    ):
        m.observe_query = observe
        app = _migrate_reads(m, worker, dwell, sample, on_event, on_progress, phase_done)
    worker_failures = worker.stats.failures

    t = time.monotonic()
    report = phase4(m, on_progress=on_progress)
    on_event(f"phase 4: {report.message}")
    phase_done("phase 4 cleanup", report, t)

    everything = m.comparisons.since(0.0)
    summary.old_p95_ms = percentile(
        [c.old_ms for c in everything if c.old_ms is not None and c.old_error is None], 95
    )
    summary.new_p95_ms = percentile(
        [c.new_ms for c in everything if c.new_ms is not None and c.new_error is None], 95
    )
    summary.migrated = services.index().count(version=plan.default_version)
    summary.searches, summary.edits = app.searches, app.edits
    summary.errors = app.errors + worker_failures + sum(c.new_error is not None for c in everything)
    summary.dead_letters = services.dead_letter.depth().total
    summary.complete = m.state.read().status == "complete"
    summary.seconds = time.monotonic() - started
    m.close()
    source.close()
    return summary


def _migrate_reads(
    m: Migration,
    worker: Worker,
    dwell: float,
    sample: list[Note],
    on_event: Callable[[str], None],
    on_progress: Progress | None,
    phase_done: Callable[[str, PhaseReport | None, float], None],
) -> AppTraffic:
    """Phases 2 and 3 while the app searches and edits through the router, and a worker runs."""
    plan = m.plan
    worker_thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    worker_thread.start()
    router = m.router()
    edits = [_edited(n) for n in sample[:: max(1, len(sample) // 20)]]
    app = AppTraffic(router, m.source, search_phrases(sample), edits)
    app.start()
    try:
        t = time.monotonic()
        needed = plan.migration.traffic.min_comparisons
        _wait_for_comparisons(m, needed)  # the first gate reads phase 1's shadow comparisons
        report = phase2(
            m,
            mode="auto",
            dwell=dwell,
            on_step=lambda step: on_event(f"phase 2: {step.detail} (gate passed)"),
        )
        gate = report.gate
        values = ", ".join(f"{c.name} {c.value}" for c in gate.checks) if gate else ""
        on_event(f"phase 2: {report.message} ({values})")
        phase_done("phase 2 read migration", report, t)

        t = time.monotonic()
        _wait_for_comparisons(m, needed)
        report = phase3(m, on_progress=on_progress)
        on_event(f"phase 3: {report.message}")
        phase_done("phase 3 full cutover", report, t)
    finally:
        app.stop()
        router.close()
        # Let the worker finish the app's edits before the write mode changes.
        Drain(None, m.services.queue, poll=0.2, timeout=120).apply()
        worker.stop()
        worker_thread.join(timeout=60)
    return app


def _edited(note: Note) -> Note:
    """The app editing a note: new text, a later update time."""
    return replace(
        note,
        content=note.content + " (edited during the migration)",
        updated=note.updated + 86_400_000,
    )


def _wait_for_comparisons(m: Migration, needed: int, timeout: float = 300.0) -> None:
    since = float(m.state.read().notes.get("step_started_at", 0.0))
    deadline = time.monotonic() + timeout
    while m.comparisons.summary(since).comparisons < needed:
        if time.monotonic() > deadline:
            raise StateError(
                f"fewer than {needed} comparisons after {timeout:.0f}s of app searches"
            )
        time.sleep(0.2)
