"""``constellation doctor``: the troubleshooting table, diagnosed from live figures."""

from __future__ import annotations

from collections.abc import Mapping
from textwrap import indent
from typing import Annotated, Any

import typer

from cli import context
from cli.output import Output
from cli.params import Json, seconds
from constellation.jsondata import jsonable
from phases.doctor import DoctorReport
from phases.doctor import doctor as diagnose


def doctor(
    ctx: typer.Context,
    json_out: Json = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample", min=0, help="Notes compared across the systems (default: the plan's)."
        ),
    ] = None,
    queries: Annotated[
        int, typer.Option("--queries", min=0, help="Live searches timed for the latency check.")
    ] = 20,
    interval: Annotated[
        str,
        typer.Option("--interval", help="Seconds between two readings of the queue depth (or 2s)."),
    ] = "2",
    window: Annotated[
        str | None,
        typer.Option("--window", help="Rates over this many seconds (default: the plan's)."),
    ] = None,
) -> None:
    """Diagnose backlog, embedding errors, slow queries and inconsistency; exit 1 on findings
    (4 when a system could not be reached)."""
    app_ctx = context.get(ctx)
    out = app_ctx.output
    m = app_ctx.migration(write=False)
    with out.status("diagnosing"):
        report = diagnose(
            m,
            samples=sample,
            queries=queries,
            interval=seconds(interval) or 0.0,
            window=seconds(window),
        )
    out.show(report, show_doctor)
    if report.unreachable:
        raise typer.Exit(4)  # an outside system out of reach, as for every command
    if not report.healthy:
        raise typer.Exit(1)


def show_doctor(out: Output, report: DoctorReport) -> None:
    """A table of figures per area, then every finding with its evidence and next command."""
    for area in report.areas:
        if area.figures:
            rows = [(name, readable(value)) for name, value in _flat(area.figures)]
            out.table([area.title, ""], rows, title=f"{area.title}: {area.status}")
        else:
            out.result(f"{area.title}: {area.status}")
        for note in area.notes:
            out.result(f"  note: {note}")
    findings = report.findings
    if not findings:
        out.result("healthy: no findings")
        return
    out.table(
        ["area", "problem", "evidence", "next"],
        [
            (
                f.area,
                f.problem,
                "\n".join(f"{k}: {readable(v)}" for k, v in f.evidence.items()),
                f.next_command,
            )
            for f in findings
        ],
        title=f"{len(findings)} finding(s)",
    )


def _flat(figures: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Figures one a row: a figure made of named parts (the query parameters of each system)
    becomes a row per part, ``name, part: key``."""
    rows: list[tuple[str, Any]] = []
    for name, value in figures.items():
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, Mapping) for v in value.values())
        ):
            rows += [
                (f"{part}: {key}", v) for part, inner in value.items() for key, v in inner.items()
            ]
        else:
            rows.append((name, value))
    return rows


def readable(value: Any) -> str:
    """A figure or a piece of evidence as a person reads it: yes/no, numbers with separators,
    "none" for an empty collection, a mapping as ``key value`` parts, a list of cases one a
    line (never raw JSON)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        parts = []
        for k, v in value.items():
            text = readable(v)
            parts.append(f"{k}:\n{indent(text, '  ')}" if "\n" in text else f"{k} {text}")
        lines = len(parts) > 3 or any("\n" in part for part in parts)
        return "\n".join(parts) if lines else ", ".join(parts)
    if isinstance(value, list | tuple | set):
        if not value:
            return "none"
        items = [readable(v) for v in value]
        if any(isinstance(v, Mapping) for v in value):
            return "\n".join(f"- {item}" for item in items)
        return ", ".join(items)
    return readable(jsonable(value))
