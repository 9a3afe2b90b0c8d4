"""Phase 4, cleanup: writes go to the new system only; the legacy index is archived.

Exit gate: the archive's record count equals the legacy index's. The legacy index itself is
kept (only archived), and the state keeps when its writes stopped, so that a rollback can
catch it up (:mod:`phases.migrate.catchup`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from constellation.errors import ConstellationError
from constellation.ledger.notes import ArchiveNote, Notes
from constellation.migration.legacy import Archivable
from constellation.wiring.migration import Migration
from phases.checks.gates import Gate, GateCheck, outcome_of
from phases.migrate.archive import Archive, archive_count
from phases.migrate.phase import PhaseReport, Progress, conclude, opening
from phases.steps import Step, StepResult, run_steps


def phase4(
    m: Migration,
    *,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    on_progress: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PhaseReport:
    """Phase 4, cleanup: writes to the new system only; the legacy index archived and verified."""
    before = m.state.read()
    changes: dict[str, object] = {"write_mode": "new", "read_traffic": 1.0}
    stopped = before.notes.get("old_writes_stopped_at")
    if before.write_mode != "new":
        # From here the old system gets no writes: a rollback catches it up from this time.
        stopped = m.clock()
        changes["notes"] = Notes(old_writes_stopped_at=stopped)
    start = opening(m, 4, changes, force=force, reason=reason)
    legacy = m.legacy
    if not isinstance(legacy, Archivable):
        raise ConstellationError(
            "the legacy adapter cannot export its records (it has no count() and scan())",
            "archive the old index with its own tools, then run phase 4 with --force",
        )
    name = m.plan.legacy.name
    path = m.plan.data_dir / "archive" / _archive_name(name, stopped)
    archive = Archive(
        "the legacy index",
        lambda: legacy.scan(500),
        legacy.count,
        path,
        on_progress,
        # what killed runs of phase 4 left (earlier names: .jsonl.partial, and any stamp)
        stale=(f"{name}.jsonl*.partial", f"{name}-[0-9]*.partial"),
    )
    steps: list[Step] = [start.step, archive]
    report = PhaseReport(
        4, dry_run, run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
    )
    if dry_run:
        report.message = "would then verify the archive's count against the legacy index"
        return report
    expected, found = legacy.count(), archive_count(path)
    check = GateCheck(
        "archive verified (records)",
        outcome_of(found == expected),
        f"{found:,} in {path.name}",
        f"= {expected:,} in the legacy index",
    )
    report.gate = Gate("phase 4 exit", [check])
    notes = Notes(archive=ArchiveNote(path=str(path), records=found))
    return conclude(
        m,
        report,
        notes,
        done="complete",
        passed=f"migration complete; the legacy index is archived at {path}",
        failed="the archive does not match the legacy index; re-run phase 4",
    )


def _archive_name(name: str, stopped: float | None) -> str:
    """One archive per time phase 4 began: after a rollback and a new phase 4, an archive of
    the earlier one is never taken for the current one, whatever its count."""
    if stopped is None:
        return f"{name}.jsonl.gz"
    return f"{name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(stopped))}.jsonl.gz"
