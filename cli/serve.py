"""``constellation serve``: the service over HTTP."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli import context, logs
from cli.output import Output


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (beyond loopback needs tokens).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker", help="Run the embed worker in this process (the embedded default's way)."
        ),
    ] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Access log and other log lines as JSON.")
    ] = False,
) -> None:
    """Serve embed, query, stats, health and metrics, and the migration's notes and search."""
    from constellation.api.auth import check_bind
    from constellation.api.server import serve as run_server
    from phases.serve import prepare_embedded

    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = Output()
    check_bind(plan, host)  # before anything is created
    logs.configure(json_lines=log_json, level=logging.INFO, also=("uvicorn",))
    services = app_ctx.services(write=worker)
    if worker:
        created = [r.resource for r in prepare_embedded(plan, services) if r.outcome == "created"]
        if created:
            out.info(f"created {', '.join(created)}")
    run_server(
        plan,
        host=host,
        port=port,
        worker=worker,
        services=services,
        on_listening=lambda url: out.info(
            f"serving {plan.name} ({plan.environment}) on {url}"
            f"{' with the embed worker' if worker else ''} (docs: /docs)"
        ),
    )
