"""``constellation describe``."""

from __future__ import annotations

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from phases.operate.describe import REBUILD, DescribeReport
from phases.operate.describe import describe as describe_resources


def describe(ctx: typer.Context, json_out: Json = False) -> None:
    """Show the queues (depth, redrive) and the index (dimension, metric, records, fields)."""
    app_ctx = context.get(ctx)
    report = describe_resources(app_ctx.plan(), app_ctx.services(write=False))
    app_ctx.output.show(report, show_report)
    if report.unreadable:
        raise typer.Exit(1)


def show_report(out: Output, report: DescribeReport) -> None:
    rows: list[tuple[object, ...]] = []
    for q in report.queues:
        if q.info is None:
            rows.append((q.role, q.name, "missing", None, None, None, None, None))
            continue
        redrive = q.info.redrive
        rows.append(
            (
                q.role,
                q.name,
                "ok",
                q.info.depth.visible,
                q.info.depth.in_flight,
                q.info.visibility_timeout,
                "FIFO, per note" if q.info.fifo else "standard",
                f"{redrive.dead_letter} after {redrive.max_receive_count}" if redrive else None,
            )
        )
    out.table(
        ["queue", "name", "state", "visible", "in flight", "visibility s", "order", "redrive"],
        rows,
        title=f"queues of {report.plan} ({report.environment})",
    )
    index_rows: list[tuple[object, ...]] = []
    for i in report.indexes:
        if i.info is None:
            index_rows.append((i.name, "missing", None, None, None, None, None, None))
            continue
        fields = ", ".join(f"{k}:{v}" for k, v in i.info.metadata_fields.items())
        versions = ", ".join(f"v{v}: {n:,}" for v, n in i.by_version.items()) or None
        index_rows.append(
            (
                i.name,
                "ok",
                i.info.dimension,
                i.info.metric,
                i.info.count,
                versions,
                i.layout,
                fields,
            )
        )
    out.table(
        ["index", "state", "dims", "metric", "records", "by version", "layout", "metadata"],
        index_rows,
    )
    if not report.provisioned:
        out.warn("some resources are missing; run `constellation provision`")
    for name, check in report.unreadable:
        out.error(
            f"index {name}: version {check.version}'s vectors cannot be read ({check.detail}): "
            f"every search finds nothing; {REBUILD}"
        )
