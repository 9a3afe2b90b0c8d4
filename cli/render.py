"""Renderers shared by the migration commands: gates, consistency, steps, the journal."""

from __future__ import annotations

from collections.abc import Sequence

from cli.output import Output, timestamp
from constellation.migration.source import SkippedNote
from constellation.migration.state import JournalEntry, MigrationState
from phases.consistency import ConsistencyReport
from phases.gates import Gate
from phases.steps import StepResult


def steps(out: Output, results: Sequence[StepResult], title: str) -> None:
    if results:
        out.table(
            ["resource", "outcome", "detail"],
            [(r.resource, r.outcome, r.detail) for r in results],
            title=title,
        )


def skipped(out: Output, rows: Sequence[SkippedNote]) -> None:
    """Rows of the notes source that are not usable notes: each with its column and why."""
    if rows:
        out.table(
            ["note", "column", "why it was skipped"],
            [(s.id, s.column, s.reason) for s in rows[:500]],
            title=f"{len(rows):,} source row(s) skipped (fix them in the app's table)",
        )


def gate(out: Output, result: Gate | None) -> None:
    if result is None:
        return
    verdict = "pass" if result.passed else "fail"
    out.table(
        ["check", "result", "value", "bound"],
        [(c.name, "pass" if c.passed else "fail", c.value, c.bound) for c in result.checks],
        title=f"{result.name}: {verdict}",
    )


def consistency(out: Output, report: ConsistencyReport | None, *, low_rows: int = 10) -> None:
    if report is None:
        return
    mean = "n/a" if report.mean is None else f"{report.mean:.3f}"
    minimum = "n/a" if report.minimum is None else f"{report.minimum:.3f}"
    out.table(
        ["notes checked", "mean overlap", "minimum", "threshold", "result"],
        [(report.checked, mean, minimum, report.min_overlap, "pass" if report.passed else "fail")],
        title=f"consistency: top-{report.top_k} overlap of noteIds"
        if report.top_k
        else "consistency",
    )
    if report.checked:
        out.table(["overlap", "notes"], list(report.distribution.items()), title="distribution")
    if report.low:
        out.table(
            ["user", "note", "overlap", "old results", "new results", "finds itself first"],
            [
                (n.user_id, n.note_id, round(n.overlap, 3), n.old_count, n.new_count, n.self_first)
                for n in report.low[:low_rows]
            ],
            title=f"{len(report.low)} note(s) below {report.min_overlap}"
            + (f" (first {low_rows})" if len(report.low) > low_rows else ""),
        )
    for error in report.errors[:5]:
        out.warn(error)
    if report.checked and not report.passed:
        out.warn(f"mean overlap {mean} is below the threshold {report.min_overlap}")


def state(out: Output, current: MigrationState, summary: str) -> None:
    out.table(
        [
            "phase",
            "write mode",
            "read traffic",
            "consumer",
            "model versions (write / read)",
            "updated",
        ],
        [
            (
                summary,
                current.write_mode,
                f"{current.read_traffic:.0%}",
                "enabled" if current.consumer_enabled else "disabled",
                f"{','.join(map(str, current.write_versions))} / {','.join(map(str, current.read_versions))}",
                timestamp(current.updated_at),
            )
        ],
        title="migration state",
    )


def journal(out: Output, entries: Sequence[JournalEntry]) -> None:
    if not entries:
        return
    rows = []
    for entry in entries:
        changes = ", ".join(
            f"{k}: {b} → {a}" for k, (b, a) in entry.changes.items() if k != "notes"
        )
        rows.append((timestamp(entry.at), entry.command, entry.reason, changes or "-"))
    out.table(["time", "command", "reason", "changes"], rows, title="journal (latest last)")
