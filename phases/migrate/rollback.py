"""Rollbacks: undo any step of the migration in one command.

* **quick**: every search back to the old system (read traffic 0) and the consumer paused;
  writes dual, so nothing written meanwhile is lost on either side and the old system gets
  every write it serves. Safe to repeat.
* **full**: writes back to the old system only, the phase marked rolled back; queues and
  index are kept for a later retry (phase 1 may start again and re-sends every note), unless
  ``delete_service`` (with ``yes``), which deletes them only after an archive of the new index
  has been written and verified.

From phase 4 (writes to the new system only) both need ``force``, and both first catch the old
system up (:mod:`phases.migrate.catchup`): dual writes again, then every note changed since phase 4
began written the old way and every note deleted meanwhile removed; only then do reads move.

Routers see the change within ``traffic.state_refresh`` seconds; a running worker takes no new
batch after its next poll of the consumer switch (:mod:`phases.migrate.consumer`), finishes what it
holds, and waits until the consumer is enabled again. A report's message is made from the
state the rollback left, so what it prints is what ``migrate status`` shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from constellation.errors import StateError
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.migrate.archive import Archive
from phases.migrate.backfill import ResetBackfill
from phases.migrate.catchup import CatchUp, Progress, needs_catch_up, old_writes_stopped
from phases.steps import ChangeState, Check, Step, StepResult, run_steps

WRITES = {
    "dual": "writes go to both systems (dual)",
    "old": "writes go to the old system only",
    "new": "writes go to the new system only",
}


@dataclass
class RollbackReport:
    kind: str
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)
    state: MigrationState | None = None
    archive: str | None = None
    #: what the catch-up of the old system did (a rollback from phase 4)
    caught_up: dict[str, Any] | None = None
    message: str = ""


def _phase4_guard(state: MigrationState, force: bool) -> None:
    if needs_catch_up(state) and not force:
        raise StateError(
            "phase 4 writes to the new system only: the old system has missed every write since",
            "a rollback first writes every note changed since then into the old system; "
            "to go ahead, add --force",
        )


def _begin(m: Migration, force: bool, reason: str, kind: str) -> tuple[MigrationState, str]:
    """The state a rollback starts from (refused from phase 4 without ``force``) and its
    reason for the journal."""
    state = m.state.read()
    _phase4_guard(state, force)
    return state, reason or f"{kind} rollback"


def _run(
    m: Migration,
    state: MigrationState,
    kind: str,
    reason: str,
    decide: Callable[[MigrationState], dict[str, object]],
    *,
    dry_run: bool,
    on_progress: Progress | None,
    after: Sequence[Step] = (),
) -> tuple[list[StepResult], CatchUp | None]:
    """A rollback's steps in order: from phase 4, dual writes again and the catch-up of the
    old system; then the state change, decided again inside its transition (so a rollback
    that came first is not undone); then ``after``."""
    command = f"rollback {kind}"
    steps: list[Step] = []
    catch_up = None
    if needs_catch_up(state):
        steps.append(
            ChangeState(
                m.state,
                command,
                f"{reason}: dual writes first, so the old system gets every write from now on",
                # only from "new": a full rollback that came first (write mode old) is not undone
                lambda current: {"write_mode": "dual"} if needs_catch_up(current) else {},
            )
        )
        since = old_writes_stopped(m, state)
        catch_up = CatchUp(m, since, m.plan.migration.traffic.state_refresh, on_progress)
        steps.append(catch_up)
    steps += [ChangeState(m.state, command, reason, decide), *after]
    return run_steps(steps, dry_run=dry_run), catch_up


def _caught_up(catch_up: CatchUp | None) -> dict[str, Any] | None:
    return catch_up.summary() if catch_up and catch_up.applied else None


def _message(m: Migration, report: RollbackReport, catch_up: CatchUp | None, rest: str) -> str:
    """What the rollback did, read from the state it left."""
    state = report.state
    assert state is not None
    if report.dry_run:
        return "dry run: nothing changed; the steps above would run in this order"
    reads = (
        "every search goes to the old system"
        if state.read_traffic == 0
        else f"{state.read_traffic:.0%} of users search the new system"
    )
    parts = [
        f"{reads} within {m.plan.migration.traffic.state_refresh:g}s",
        WRITES[state.write_mode],
    ]
    if not state.consumer_enabled:
        parts.append("workers pause after their next poll")
    text = "; ".join(parts)
    if catch_up is not None and catch_up.applied:
        removed = catch_up.skipped or f"{catch_up.removed:,} removed"
        text = (
            f"the old system was caught up first ({catch_up.written:,} notes changed since "
            f"phase 4 began written, {removed}); {text}"
        )
    return f"{text}. {rest}"


def rollback_quick(
    m: Migration,
    *,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
    on_progress: Progress | None = None,
) -> RollbackReport:
    """Quick rollback: all searches to the old system and the consumer paused; dual writes."""
    state, why = _begin(m, force, reason, "quick")

    def decide(current: MigrationState) -> dict[str, object]:
        _phase4_guard(current, force)
        changes: dict[str, object] = {
            "read_traffic": 0.0,
            "traffic_step": -1,
            "consumer_enabled": False,
        }
        if needs_catch_up(current):
            changes["write_mode"] = "dual"  # the old system serves again: it gets every write
        if current.phase >= 2 and current.status != "rolled_back":
            # Traffic steps start again from the first, each behind its gate.
            changes.update(phase=2, status="running")
        if current.phase >= 1 and not _same(current, changes):
            # The next gate reads only comparisons made after the rollback.
            changes["notes"] = {"step_started_at": m.clock()}
        return changes

    if _same(state, decide(state)):
        unchanged = StepResult("migration state", "unchanged", "unchanged", "already rolled back")
        return RollbackReport(
            "quick", dry_run, [unchanged], state, message="already rolled back; nothing changed"
        )
    results, catch_up = _run(
        m, state, "quick", why, decide, dry_run=dry_run, on_progress=on_progress
    )
    report = RollbackReport("quick", dry_run, results)
    report.state = m.state.read()
    report.caught_up = _caught_up(catch_up)
    if dry_run:
        refresh = f"{m.plan.migration.traffic.state_refresh:g}s"
        report.message = (
            f"would send every search to the old system (within {refresh}) and pause the "
            "workers after their next poll; dual writes would continue. Nothing changed: run it "
            "without --dry-run"
        )
        return report
    if report.state.status == "rolled_back" and not dry_run:
        # A full rollback came first (or meanwhile): it stands, and this one added nothing.
        report.message = (
            "the migration is rolled back fully (write mode old): every search and write is on "
            "the old system; start again with `constellation migrate phase 1`"
        )
        return report
    report.message = _message(
        m,
        report,
        catch_up,
        "Resume with `constellation consumer enable` and `constellation migrate phase 2`",
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
    on_progress: Progress | None = None,
) -> RollbackReport:
    """Full rollback: writes and reads back to the old system; the service kept (or deleted)."""
    state, why = _begin(m, force, reason, "full")
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

    def decide(current: MigrationState) -> dict[str, object]:
        _phase4_guard(current, force)  # phase 4 may have begun since the first look
        return changes

    report.steps, catch_up = _run(
        m,
        state,
        "full",
        why,
        decide,
        dry_run=dry_run,
        on_progress=on_progress,
        after=[ResetBackfill(m.state)],
    )
    report.caught_up = _caught_up(catch_up)
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
                # a killed run left its own stamp's partial file: removed here
                stale=(f"{plan.index.name}-[0-9]*.partial",),
            ),
            DeleteResource("queue", plan.queue.name, broker.delete_queue),
            DeleteResource("queue", plan.queue.dead_letter, broker.delete_queue),
            DeleteResource("index", plan.index.name, store.delete_index),
        ]
        report.steps += run_steps(deletions, dry_run=dry_run)
        report.archive = str(path)
    report.state = m.state.read()
    if dry_run:
        report.message = (
            "would move writes and searches back to the old system"
            + (
                ", archive the new index and delete the service"
                if delete_service
                else "; queues and index would be kept"
            )
            + ". Nothing changed: run it without --dry-run"
        )
        return report
    kept = "The service was archived and deleted" if delete_service else "Queues and index are kept"
    report.message = _message(
        m, report, catch_up, f"{kept}; start again with `constellation migrate phase 1`"
    )
    return report
