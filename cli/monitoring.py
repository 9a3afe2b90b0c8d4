"""``constellation monitoring export``: the Prometheus rule file and the Grafana dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import context
from constellation.monitoring.export import export as export_files

app = typer.Typer(help="Monitoring files for Prometheus and Grafana.", no_args_is_help=True)


@app.command("export")
def export(
    ctx: typer.Context,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write alerts.yaml and dashboard.json to.")
    ] = Path("monitoring"),
) -> None:
    """Write the plan's alert rules (Prometheus) and dashboard (Grafana) to a folder."""
    app_ctx = context.get(ctx)
    plan, out = app_ctx.plan(), app_ctx.output
    for path in export_files(plan, out_dir):
        out.result(f"wrote {path}")
