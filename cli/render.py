"""Renderers shared by the migration commands: gates, checks, consistency, steps, the journal;
and the one way a command ends with its outcome's exit code."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from cli.output import Output, timestamp
from constellation.ledger.journal import JournalEntry
from constellation.ledger.state import MigrationState
from constellation.migration.source import SkippedNote
from phases.checks.capacity import CapacityReport
from phases.checks.consistency import ConsistencyReport
from phases.checks.gates import EXIT_CODES, Gate
from phases.checks.measured import RecordedCheck
from phases.checks.quality import QualityReport
from phases.checks.recall import RecallReport
from phases.steps import StepResult


def finish(out: Output, outcome: str, message: str = "") -> None:
    """End a command by its outcome: 0 pass, 1 fail, 3 inconclusive (README "Exit codes").
    ``message`` is printed once: as information when it passed, else as the error."""
    code = EXIT_CODES.get(outcome, 1)
    if message:
        (out.error if code else out.info)(message)
    if code:
        raise typer.Exit(code)


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
    out.table(
        ["check", "result", "value", "bound"],
        [(c.name, c.label, c.value, c.bound) for c in result.checks],
        title=f"{result.name}: {result.outcome}",
    )


def checks(out: Output, recorded: Sequence[RecordedCheck]) -> None:
    """Every check's last measurement and outcome, as the state recorded them."""
    if recorded:
        out.table(
            ["check", "result", "value", "bound", "measured by", "at"],
            [
                (
                    c.name,
                    f"{c.outcome} (dry run)" if c.dry_run else c.outcome,
                    c.value,
                    c.bound,
                    c.command,
                    timestamp(c.at),
                )
                for c in recorded
            ],
            title="checks, last measured",
        )


def measured(out: Output, reports: Sequence[object]) -> None:
    """The recall, quality and capacity reports a command measured on the way."""
    for report in reports:
        if isinstance(report, RecallReport):
            recall(out, report)
        elif isinstance(report, QualityReport):
            quality(out, report)
        elif isinstance(report, CapacityReport):
            capacity(out, report)


def recall(out: Output, report: RecallReport) -> None:
    value = "n/a" if report.recall is None else f"{report.recall:.3f}"
    out.table(
        ["user", "notes embedded again", "queries", f"recall@{report.k}"],
        [(u.user_id, u.notes, u.queries, round(u.recall, 3)) for u in report.users],
        title=f"recall@{report.k} of version {report.version} against exact search: {value} "
        f"(bound >= {report.min_recall}): {report.outcome}"
        + (" (dry run)" if report.dry_run else ""),
    )
    out.info(
        f"recall: {report.embedded:,} notes embedded again from the source, "
        f"{report.queries} queries, {report.seconds:,.1f}s"
    )
    if report.worst:
        out.table(
            ["user", "query", "recall", "exact top-k notes the index missed"],
            [
                (w.user_id, w.query, round(w.recall, 3), ", ".join(w.missing[:5]))
                for w in report.worst
            ],
            title="queries with the lowest recall",
        )
    for note in report.notes:
        out.info(note)


def quality(out: Output, report: QualityReport) -> None:
    old, new = report.baseline, report.candidate
    rows = []
    for label, name in (
        (f"recall@{report.k}", "recall@k"),
        (f"MRR@{report.k}", "mrr"),
        ("nDCG@10", "ndcg@10"),
    ):
        a, b = old.metric(name), new.metric(name)
        bound = f">= {old.system} - {report.tolerance:g}" if name == report.metric else ""
        rows.append((label, round(a, 3), round(b, 3), f"{b - a:+.3f}", bound))
    rows.append(("failed searches", old.errors, new.errors, "", ""))
    out.table(
        ["measure", old.system, new.system, "difference", "bound"],
        rows,
        title=f"quality on {report.queries} judged queries ({report.golden}): {report.outcome}"
        + (" (dry run)" if report.dry_run else ""),
    )
    for note in report.notes:
        out.warn(note)


def capacity(out: Output, report: CapacityReport) -> None:
    rate = "not measured" if report.rate is None else f"{report.rate:,.1f} texts/s"
    backfill = "-" if report.backfill_seconds is None else _duration(report.backfill_seconds)
    if report.limit_rate is not None:
        rate += f"; the provider's {report.limited_by} allow {report.limit_rate:,.1f}"
    out.table(
        ["notes", "already stored", "to embed", "embedding rate (one worker)", "backfill time"],
        [
            (
                report.notes,
                report.stored,
                report.to_embed,
                rate + (f" on {report.sample} notes" if report.sample else ""),
                backfill,
            )
        ],
        title="capacity: the backfill",
    )
    gate(out, report.gate())
    for warning in report.warnings:
        out.warn(warning)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


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
        rows.append(
            (timestamp(entry.at), entry.who or "-", entry.command, entry.reason, changes or "-")
        )
    out.table(["time", "who", "command", "reason", "changes"], rows, title="journal (latest last)")
