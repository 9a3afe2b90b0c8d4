"""Embedding-model versions: reprocess under a new version, read both, switch, clean up.

The same shape as the service migration, one level down:

1. ``upgrade --to V`` provisions what V needs (loads or exports the model; its own index if it
   has another dimension), writes V for new notes beside the current version, and reprocesses
   every note under V through the queue (resumable, like the backfill). Reads stay put.
2. ``switch --to V`` moves reads to V after a gate: V covers every note, and V agrees with the
   current version (consistency above the plan's bound). Reads then merge V with the previous
   version, V preferred, so nothing disappears from results.
3. ``rollback`` moves reads back while the old vectors still exist.
4. ``finalize`` (confirmed) deletes the old version's records and writes V only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from constellation.errors import StateError
from constellation.ledger.notes import ModelUpgradeNote
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.checks.consistency import ConsistencyReport, consistency_between
from phases.checks.gates import Gate, GateCheck, consistency_check, outcome_of
from phases.checks.measured import recorded
from phases.checks.quality import quality_checks
from phases.migrate import backfill
from phases.migrate.backfill import Backfill
from phases.operate.provision import CheckModel, index_steps
from phases.operate.repair import stale_notes
from phases.steps import ChangeState, Step, StepResult, run_steps

Progress = Callable[[str, int | None, int], None]
NOTE: Final = "model_upgrade"
#: the upgrade's stage while finalize deletes the old version (rollback and upgrade refuse)
FINALIZING = "finalizing"


@dataclass
class ModelReport:
    action: str
    dry_run: bool = False
    steps: list[StepResult] = field(default_factory=list)
    gate: Gate | None = None
    consistency: ConsistencyReport | None = None
    state: MigrationState | None = None
    records_by_version: dict[int, int] = field(default_factory=dict)
    ok: bool = True
    #: the gate's outcome when it did not pass (exit 1 or 3)
    outcome: str = "pass"
    message: str = ""


def _known(m: Migration, version: int) -> None:
    if version not in m.plan.models:
        declared = ", ".join(map(str, sorted(m.plan.models)))
        raise StateError(
            f"model version {version} is not declared in the plan (it has {declared})",
            "add it under models:",
        )


def _counts(m: Migration) -> dict[int, int]:
    counts: dict[int, int] = {}
    for version in sorted(m.plan.models):
        info = m.services.store.inspect(m.plan.index_name_for(version))
        counts[version] = m.services.index(version).count(version=version) if info else 0
    return counts


def upgrade(
    m: Migration, to: int, *, dry_run: bool = False, on_progress: Progress | None = None
) -> ModelReport:
    """Start writing model version ``to`` beside the current one and reprocess every note."""
    _known(m, to)
    state = m.state.read()
    _may_upgrade(state, to)
    current = state.read_versions[0]

    def decide(now: MigrationState) -> dict[str, Any]:
        # On the state written: a full rollback or a finalize that came meanwhile refuses it,
        # a version another upgrade added meanwhile is kept.
        _may_upgrade(now, to)
        reading = now.read_versions[0]
        return {
            "write_versions": tuple(dict.fromkeys((*now.write_versions, to))),
            "notes": {NOTE: {"from": reading, "to": to, "stage": "reprocessing"}},
        }

    steps: list[Step] = [CheckModel(m.services, to), *index_steps(m.plan, m.services, to)]
    steps.append(
        ChangeState(m.state, "model upgrade", f"write version {to} beside {current}", decide)
    )
    steps.append(
        Backfill(
            m.source, m.services.queue, m.state, [to], on_progress, m.plan.consumer.max_job_bytes
        )
    )
    report = ModelReport("upgrade", dry_run, run_steps(steps, dry_run=dry_run, atomic=False))
    report.state = m.state.read()
    if dry_run:
        report.message = (
            f"would write version {to} beside {current} for new notes and queue every note for "
            f"it; reads would stay on {current}. Nothing changed: run it without --dry-run"
        )
        return report
    report.message = (
        f"version {to} is written for new notes and every note is queued for it; reads stay on "
        f"{current}. When the queue drains: `constellation check consistency --versions {current},{to}`, "
        f"then `constellation model switch --to {to}`"
    )
    return report


def _may_upgrade(state: MigrationState, to: int) -> None:
    if state.write_mode == "old":
        raise StateError(
            "the embedding service gets no writes yet (write mode old)",
            "start with `constellation migrate phase 1`",
        )
    if state.read_versions[0] == to and state.write_versions == (to,):
        raise StateError(f"version {to} is already the version in use")
    note = state.notes.get(NOTE)
    if isinstance(note, dict) and note.get("stage") == FINALIZING:
        raise StateError(
            f"model finalize is deleting version {note['from']}'s records",
            "run `constellation model finalize --yes` until it completes, then upgrade",
        )


def coverage_gate(
    m: Migration, to: int, on_progress: Progress | None = None
) -> tuple[Gate, ConsistencyReport]:
    """The switch gate: ``to`` covers every note, and agrees with the version read now."""
    state = m.state.read()
    current = state.read_versions[0]
    missing = sum(1 for _ in stale_notes(m, to, on_progress=on_progress))
    report = consistency_between(m, versions=(current, to), on_progress=on_progress)
    checks = [
        GateCheck(
            f"version {to} covers every note",
            outcome_of(missing == 0),
            f"{missing:,} missing or stale",
            "0",
        ),
        consistency_check(report),
        GateCheck(
            "queue drained",
            outcome_of(m.services.queue.depth().total == 0),
            str(m.services.queue.depth().total),
            "0",
        ),
        # with a judged query set: the new version no worse than the one read now
        *quality_checks(m, versions=(current, to)),
    ]
    return Gate(f"switch to version {to}", checks), report


def switch(m: Migration, to: int, *, on_progress: Progress | None = None) -> ModelReport:
    """Move reads to version ``to`` once it covers every note and agrees with the current one."""
    _known(m, to)
    state = m.state.read()
    if to not in state.write_versions:
        raise StateError(
            f"version {to} is not being written",
            f"run `constellation model upgrade --to {to}` first",
        )
    current = state.read_versions[0]
    if current == to:
        return ModelReport("switch", message=f"reads are already on version {to}", state=state)
    gate, consistency = coverage_gate(m, to, on_progress)
    report = ModelReport(
        "switch", gate=gate, consistency=consistency, records_by_version=_counts(m)
    )
    if not gate.passed:
        report.ok = False
        report.outcome = gate.outcome
        report.message = (
            f"not switched, the gate {gate.outcome}: {gate.explain()}; reads stay on version "
            f"{current}. When fixed, continue with `constellation model switch --to {to}`"
        )
        report.state = m.state.transition(
            "model switch",
            f"gate {gate.outcome}: {gate.explain()}",
            lambda _s: {"notes": recorded(gate.checks, "model switch", m.clock())},
        ).after
        return report

    def decide(now: MigrationState) -> dict[str, Any]:
        if now.read_versions[0] != current or to not in now.write_versions:
            raise StateError(
                "the model versions changed while the switch gate was evaluated",
                "run `constellation model switch` again",
            )
        return {
            "read_versions": (to, current),
            "notes": {
                NOTE: {"from": current, "to": to, "stage": "switched"},
                **recorded(gate.checks, "model switch", m.clock()),
            },
        }

    report.state = m.state.transition(
        "model switch", f"gate passed: {gate.failing() or 'all checks'}", decide
    ).after
    report.message = (
        f"reads use version {to} (merged with {current} for any note {to} lacks); "
        f"`constellation model finalize --yes` removes version {current}, `model rollback` undoes"
    )
    return report


def rollback(m: Migration) -> ModelReport:
    """Move reads back to the previous version while its vectors still exist."""
    found: dict[str, Any] = {}

    def decide(state: MigrationState) -> dict[str, Any] | None:
        upgrade_note = state.notes.get(NOTE)
        if not isinstance(upgrade_note, dict) or upgrade_note.get("stage") == "finalized":
            raise StateError(
                "there is no model switch to roll back (or its old version was finalized)"
            )
        if upgrade_note.get("stage") == FINALIZING:
            raise StateError(
                f"model finalize is deleting version {upgrade_note['from']}'s records: "
                "there is no version to roll back to",
                "run `constellation model finalize --yes` until it completes",
            )
        found.update(upgrade_note)
        previous = int(upgrade_note["from"])
        if state.read_versions == (previous,):
            return None
        return {
            "read_versions": (previous,),
            "notes": {NOTE: {**upgrade_note, "stage": "rolled back"}},
        }

    done = m.state.transition(
        "model rollback",
        lambda state: f"reads back to version {_upgrade(state)['from']}",
        decide,
    )
    previous = int(found["from"])
    if not done.changed:
        return ModelReport(
            "rollback", message=f"reads are already on version {previous}", state=done.after
        )
    return ModelReport(
        "rollback",
        state=done.after,
        message=f"reads are back on version {previous}; version {found['to']} is still written",
    )


def finalize(
    m: Migration, *, yes: bool = False, on_progress: Progress | None = None
) -> ModelReport:
    """Delete the previous version's records (after confirmation) and write the new one only."""
    state = m.state.read()
    _may_finalize(state)
    if not yes:
        old = _upgrade(state)["from"]
        raise StateError(f"finalize deletes every record of version {old}", "confirm with --yes")

    def claim(now: MigrationState) -> dict[str, Any]:
        # Decided on the state written: a model rollback that came since the first look
        # refuses this, and once claimed, a rollback refuses (the records are going). Reads
        # and writes leave the old version before its first record is deleted.
        note = _may_finalize(now)
        new = int(note["to"])
        return {
            "write_versions": (new,),
            "read_versions": (new,),
            "notes": {NOTE: {**note, "stage": FINALIZING}},
        }

    claimed = m.state.transition(
        "model finalize",
        lambda now: f"deleting the records of version {_upgrade(now)['from']}",
        claim,
    ).after
    upgrade_note = _upgrade(claimed)
    old, new = int(upgrade_note["from"]), int(upgrade_note["to"])
    index = m.services.index(old)
    doomed = [r.id for r in index.scan(500, version=old)]
    for start in range(0, len(doomed), 500):
        index.delete(doomed[start : start + 500])
        if on_progress:
            on_progress(f"delete version {old}", len(doomed), len(doomed[start : start + 500]))
    backfill.reset(m.state, [new])
    # the old version has no records now: an upgrade back to it must send every note again,
    # not resume after its last backfill's cursor (which would send none)
    backfill.reset(m.state, [old])

    def decide(now: MigrationState) -> dict[str, Any]:
        if now.notes.get(NOTE) != upgrade_note:
            raise StateError(
                f"the model upgrade changed while version {old}'s records were deleted",
                "see `constellation model status`, then finalize again",
            )
        return {"notes": {NOTE: {**upgrade_note, "stage": "finalized", "deleted": len(doomed)}}}

    new_state = m.state.transition(
        "model finalize", f"deleted {len(doomed):,} records of version {old}", decide
    ).after
    return ModelReport(
        "finalize",
        state=new_state,
        records_by_version=_counts(m),
        message=f"version {new} only; {len(doomed):,} records of version {old} deleted",
    )


def _upgrade(state: MigrationState) -> ModelUpgradeNote:
    """The upgrade in progress (a command that got here checked there is one)."""
    note = state.notes.get(NOTE)
    if note is None:
        raise StateError("there is no model upgrade", "see `constellation model status`")
    return note


def _may_finalize(state: MigrationState) -> ModelUpgradeNote:
    """The upgrade note finalize works on (switched, or a finalize that was interrupted)."""
    note = state.notes.get(NOTE)
    if not isinstance(note, dict) or note.get("stage") not in ("switched", FINALIZING):
        raise StateError(
            "finalize follows a model switch", "run `constellation model switch --to V` first"
        )
    return note


def status(m: Migration) -> ModelReport:
    """The model versions written and read, and the records per version."""
    state = m.state.read()
    report = ModelReport("status", state=state, records_by_version=_counts(m))
    note = state.notes.get(NOTE)
    report.message = (
        f"upgrade {note['from']} → {note['to']}: {note['stage']}"
        if isinstance(note, dict)
        else "no model upgrade"
    )
    return report
