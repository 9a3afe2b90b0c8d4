"""``constellation serve``: the service over HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import typer

from cli import context, logs
from cli.output import Output
from cli.params import Json


@dataclass(frozen=True)
class Listening:
    """Where the service listens (with ``--json``, one JSON line on stdout, for scripts)."""

    url: str
    plan: str
    environment: str
    worker: bool


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
    json_out: Json = False,
) -> None:
    """Serve embed, query, stats, health and metrics, the migration's notes and search, and
    the browser console (at /)."""
    from constellation.api.auth import check_bind
    from constellation.api.server import serve as run_server
    from phases.migrate.console import MigrationVerbs
    from phases.operate.serve import prepare_embedded

    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
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
        verbs=MigrationVerbs(),
        on_listening=lambda url: out.show(
            Listening(url, plan.name, plan.environment, worker), show_listening
        ),
    )


def show_listening(out: Output, listening: Listening) -> None:
    with_worker = " with the embed worker" if listening.worker else ""
    out.info(
        f"serving {listening.plan} ({listening.environment}) on {listening.url}{with_worker} "
        f"(console: {listening.url}/, API docs: /docs)"
    )
