"""Rollbacks: undo any step of the migration in one command.

* **quick**: every search back to the old system (read traffic 0) and the consumer paused;
  dual writes stay on, so nothing written meanwhile is lost on either side. Safe to repeat.
* **full**: also writes back to the old system only, the phase marked rolled back; queues and
  index are kept for a later retry (phase 1 may start again and re-sends every note), unless
  ``delete_service`` (with ``yes``), which deletes them only after an archive of the new index
  has been written and verified.

Routers see the change within ``traffic.state_refresh`` seconds; a running worker takes no new
batch after its next poll of the consumer switch (:mod:`phases.consumer`), finishes what it
holds, and waits until the consumer is enabled again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from constellation.errors import StateError
from constellation.migration.runtime import Migration
from constellation.migration.state import MigrationState
from phases.archive import Archive
from phases.backfill import ResetBackfill
from phases.steps import ChangeState, Check, Step, StepResult, run_steps


@dataclass
class RollbackReport:
    kind: str
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)
    state: MigrationState | None = None
    archive: str | None = None
    message: str = ""


def _phase4_guard(state: MigrationState, force: bool) -> None:
    if state.write_mode == "new" and not force:
        raise StateError(
            "phase 4 writes to the new system only: the old system has missed every write since",
            "rolling back would serve stale results; if you accept that, add --force",
        )


def rollback_quick(
    m: Migration, *, reason: str = "", force: bool = False, dry_run: bool = False
) -> RollbackReport:
    """Quick rollback: all searches to the old system and the consumer paused; dual writes kept."""

    def decide(state: MigrationState) -> dict[str, object]:
        _phase4_guard(state, force)
        changes: dict[str, object] = {
            "read_traffic": 0.0,
            "traffic_step": -1,
            "consumer_enabled": False,
        }
        if state.phase >= 2 and state.status != "rolled_back":
            # Traffic steps start again from the first, each behind its gate.
            changes.update(phase=2, status="running")
        if state.phase >= 1 and not _same(state, changes):
            # The next gate reads only comparisons made after the rollback.
            changes["notes"] = {"step_started_at": m.clock()}
        return changes

    state = m.state.read()
    if _same(state, decide(state)):
        unchanged = StepResult("migration state", "unchanged", "unchanged", "already rolled back")
        return RollbackReport(
            "quick", dry_run, [unchanged], state, message="already rolled back; nothing changed"
        )
    # Decided again inside the transition: a full rollback that came first is not undone.
    step = ChangeState(m.state, "rollback quick", reason or "quick rollback", decide)
    report = RollbackReport("quick", dry_run, run_steps([step], dry_run=dry_run))
    report.state = m.state.read()
    report.message = (
        "every search goes to the old system within "
        f"{m.plan.migration.traffic.state_refresh:g}s; workers pause after their next poll; "
        "dual writes continue. Resume with `constellation consumer enable` and "
        "`constellation migrate phase 2`"
    )
    return report


def _same(state: MigrationState, changes: dict[str, object]) -> bool:
    return all(getattr(state, k) == v for k, v in changes.items() if k != "notes")


@dataclass
class DeleteResource:
    """Delete a queue or the index (irreversible; runs only after the archive step)."""

    kind: str
    name: str
    delete: Callable[[str], None]

    @property
    def resource(self) -> str:
        return f"{self.kind} {self.name}"

    def describe(self) -> str:
        return f"delete {self.kind} {self.name}"

    def check(self) -> Check:
        return Check("update", self.describe())

    def apply(self) -> str:
        self.delete(self.name)
        return "deleted"

    def undo(self) -> None:
        pass  # cannot be undone; the archive is the way back


def rollback_full(
    m: Migration,
    *,
    reason: str = "",
    delete_service: bool = False,
    yes: bool = False,
    force: bool = False,
    dry_run: bool = False,
) -> RollbackReport:
    """Full rollback: writes and reads back to the old system; the service kept (or deleted)."""
    _phase4_guard(m.state.read(), force)
    if delete_service and not yes and not dry_run:
        raise StateError(
            "--delete-service deletes the queues and the index (after archiving the index)",
            "confirm with --yes",
        )
    changes = {
        "write_mode": "old",
        "read_traffic": 0.0,
        "traffic_step": -1,
        "consumer_enabled": False,
        "status": "rolled_back",
    }
    report = RollbackReport("full", dry_run)

    def decide(state: MigrationState) -> dict[str, object]:
        _phase4_guard(state, force)  # phase 4 may have begun since the first look
        return changes

    steps: list[Step] = [
        ChangeState(m.state, "rollback full", reason or "full rollback", decide),
        ResetBackfill(m.state),
    ]
    report.steps = run_steps(steps, dry_run=dry_run)
    if delete_service:
        # A separate run: if the archive cannot be verified, nothing is deleted, and the
        # rollback itself (above) still stands.
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = m.plan.data_dir / "archive" / f"{m.plan.index.name}-{stamp}.jsonl.gz"
        broker, store, plan = m.services.broker, m.services.store, m.plan
        deletions: list[Step] = [
            Archive(
                "the new index",
                lambda: m.services.index().scan(500, include_vectors=True),
                lambda: m.services.index().count(),
                path,
            ),
            DeleteResource("queue", plan.queue.name, broker.delete_queue),
            DeleteResource("queue", plan.queue.dead_letter, broker.delete_queue),
            DeleteResource("index", plan.index.name, store.delete_index),
        ]
        report.steps += run_steps(deletions, dry_run=dry_run)
        report.archive = str(path)
    report.state = m.state.read()
    report.message = (
        "writes and searches are back on the old system; "
        + (
            "the service was archived and deleted"
            if delete_service and not dry_run
            else "queues and index are kept"
        )
        + "; start again with `constellation migrate phase 1`"
    )
    return report
