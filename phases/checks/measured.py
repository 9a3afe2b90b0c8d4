"""The last measurement and outcome of every check, kept in the migration state's notes.

Each check is one entry of the notes' ``checks`` (:mod:`constellation.ledger.notes`), so two
commands that record different checks at once never overwrite each other (a transition merges
``checks`` by name). Phase
gates record theirs in the transition that concludes them; ``check recall|quality|capacity``
(:func:`measure_recall`, :func:`measure_quality`, :func:`measure_capacity`) and phase 2's gates
record theirs in a transition of their own. ``migrate status`` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from constellation.ledger.notes import CheckNote, Notes
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from phases.checks.capacity import CapacityReport, check_capacity
from phases.checks.gates import GateCheck
from phases.checks.quality import QualityReport, check_quality
from phases.checks.recall import Progress, RecallReport, check_recall


@dataclass(frozen=True)
class RecordedCheck:
    """A check as last measured: by which command, when, what it found and its outcome."""

    name: str
    outcome: str
    value: str
    bound: str
    dry_run: bool
    command: str
    at: float


def recorded(checks: Iterable[GateCheck], command: str, at: float) -> Notes:
    """The note entries that record ``checks`` (merge them into a transition's ``notes``)."""
    entries: dict[str, CheckNote] = {
        c.name: CheckNote(
            outcome=c.outcome,
            value=c.value,
            bound=c.bound,
            dry_run=c.dry_run,
            command=command,
            at=at,
        )
        for c in checks
    }
    return Notes(checks=entries)


def record(m: Migration, command: str, checks: Iterable[GateCheck]) -> MigrationState:
    """Record ``checks`` in the state (one journaled transition) and return the new state."""
    notes = recorded(list(checks), command, m.clock())
    summary = ", ".join(f"{name} {n['outcome']}" for name, n in notes.get("checks", {}).items())
    return m.state.transition(command, f"measured: {summary}", lambda _s: {"notes": notes}).after


def last_checks(notes: Notes) -> list[RecordedCheck]:
    """Every recorded check of a state's notes, the most recent first."""
    found = [
        RecordedCheck(
            name,
            str(note.get("outcome", "")),
            str(note.get("value", "")),
            str(note.get("bound", "")),
            bool(note.get("dry_run", False)),
            str(note.get("command", "")),
            float(note.get("at") or 0.0),
        )
        for name, note in (notes.get("checks") or {}).items()
        if isinstance(note, Mapping)
    ]
    return sorted(found, key=lambda c: (-c.at, c.name))


def measure_recall(
    m: Migration,
    *,
    users: int | None = None,
    queries: int | None = None,
    k: int | None = None,
    min_recall: float | None = None,
    version: int | None = None,
    on_progress: Progress | None = None,
) -> RecallReport:
    """Recall@k of the new index against exact search over sampled users' notes, embedded again
    from the notes source; recorded in the migration state (``check recall``)."""
    report = check_recall(
        m,
        users=users,
        queries=queries,
        k=k,
        min_recall=min_recall,
        version=version,
        on_progress=on_progress,
    )
    record(m, "check recall", [report.as_check()])
    return report


def measure_quality(
    m: Migration,
    golden: Path | None = None,
    *,
    versions: tuple[int, int] | None = None,
    tolerance: float | None = None,
    on_progress: Progress | None = None,
) -> QualityReport:
    """Recall@k, MRR and nDCG@10 of the old and the new system (or two model versions) on a
    judged query set; recorded in the migration state (``check quality``)."""
    report = check_quality(
        m, golden, versions=versions, tolerance=tolerance, on_progress=on_progress
    )
    record(m, "check quality", [report.as_check()])
    return report


def measure_capacity(m: Migration, *, version: int | None = None) -> CapacityReport:
    """Notes to backfill, this machine's embedding rate, the backfill time, and the index's
    memory and disk beside what is free; recorded in the migration state (``check capacity``)."""
    report = check_capacity(m, version=version)
    record(m, "check capacity", report.checks)
    return report
