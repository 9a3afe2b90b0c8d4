"""``constellation worker run``."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

import typer
from rich.markup import escape

from cli import context, logs
from cli.examples import epilog
from cli.output import Output
from cli.params import Json
from constellation.monitoring.worker_metrics import DEFAULT_HOST
from constellation.wiring.worker import run_worker
from constellation.worker import RunSummary, WorkerStatus

app = typer.Typer(help="Run the embed worker.", no_args_is_help=True)


def status_line(status: WorkerStatus) -> str:
    s = status.stats
    failed = sum(s["failed"].values()) if isinstance(s["failed"], dict) else 0
    depth = status.queue_depth
    queue = (
        f"queue {depth.visible:,} waiting / {depth.in_flight:,} in flight" if depth else "queue ?"
    )
    switch = "" if status.consumer_enabled else " · [yellow]consumer disabled[/]"
    if status.outage:
        switch += f" · [red]{escape(status.outage)}: not receiving[/]"
    return (
        f"processed {s['processed']:,} · skipped {s['skipped']:,} · failed {failed:,} · "
        f"{s['rate']:,.1f} jobs/s · {queue} · {status.in_flight_batches} batches in flight{switch}"
    )


@app.command("run", epilog=epilog("worker run"))
def run(
    ctx: typer.Context,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once the queue is empty and nothing is in flight.")
    ] = False,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Stop after receiving N messages.")
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Structured JSON log lines on stderr.")
    ] = False,
    json_out: Json = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve Prometheus metrics on this port at /metrics (0: any free port).",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option("--metrics-host", help="Address for --metrics-port (default: loopback only)."),
    ] = DEFAULT_HOST,
) -> None:
    """Drain the embed queue into the vector index (batching consumer)."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    out = app_ctx.output
    live = out.err.is_terminal and not log_json
    # On a terminal the status line replaces the per-batch log lines; warnings still show.
    logs.configure(json_lines=log_json, level=logging.WARNING if live else logging.INFO)
    m = app_ctx.migration()
    with out.status("starting worker") as update:
        summary = run_worker(
            plan,
            m.services,
            m.state,
            failures=m.failures,
            drain=drain,
            max_messages=max_messages,
            on_status=(lambda status: update(status_line(status))) if live else None,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            on_metrics_url=lambda url: out.info(f"serving metrics on {url}"),
        )
    out.show(summary, partial(show_summary, queue=plan.queue.name))
    if summary.all_failed:
        failed = summary.stats.get("failed") or {}
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted(failed.items()))  # type: ignore[attr-defined]
        out.error(
            f"every job this run received failed ({reasons}); nothing was stored. "
            "See why with `constellation recover` and `constellation stats`"
        )
        raise typer.Exit(1)


def show_summary(out: Output, summary: RunSummary, *, queue: str) -> None:
    stats = summary.stats
    failed = stats.get("failed") or {}
    rows = [
        ("received", summary.received),
        ("processed", stats["processed"]),
        ("skipped (unchanged or older)", stats["skipped"]),
        ("empty text (record removed)", stats["empty"]),
        ("truncated to the model's length", stats["truncated"]),
        *((f"failed: {reason}", n) for reason, n in sorted(failed.items())),  # type: ignore[attr-defined]
        ("batches", stats["batches"]),
        ("jobs/s", stats["rate"]),
    ]
    out.table(["", "count"], rows, title=f"worker {queue}: {summary.reason}")
