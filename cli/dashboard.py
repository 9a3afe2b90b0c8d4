"""``constellation dashboard``: the monitoring panels live in the terminal, or as an HTML page."""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli import context
from cli.monitor import scope_line
from cli.output import timestamp
from cli.params import seconds as parse_seconds
from constellation.monitoring.panels import DashboardData, read_dashboard

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Block characters scaled from 0 to the maximum; a blank where there is no data."""
    top = max((v for v in values if v is not None), default=0.0)
    chars = []
    for v in values:
        if v is None:
            chars.append(" ")
        elif top <= 0:
            chars.append(_BARS[0])
        else:
            chars.append(_BARS[min(len(_BARS) - 1, max(0, round(v / top * (len(_BARS) - 1))))])
    return "".join(chars)


def on_time_axis(data: DashboardData, points: list[tuple[float, float]]) -> list[float | None]:
    """One slot per step of the range, so every sparkline shares the same time axis."""
    slots: list[float | None] = [None] * (round((data.end - data.start) / data.step) + 1)
    for t, v in points:
        slot = round((t - data.start) / data.step)
        if 0 <= slot < len(slots):
            slots[slot] = v
    return slots


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.3g}"


def panels_table(data: DashboardData) -> Table:
    """Every panel in one table: a section per panel, a row per line."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("panel", no_wrap=True)
    table.add_column("series", no_wrap=True)
    table.add_column("over time", no_wrap=True)
    table.add_column("last", justify="right")
    table.add_column("max", justify="right")
    for panel in data.panels:
        title = Text(panel.panel.title, style="bold")
        if panel.threshold is not None:
            title.append(f" (alert > {panel.threshold:g})", style="dim")
        if not panel.series:
            table.add_row(title, Text("no data recorded", style="dim"), "", "-", "-")
        for i, (label, points) in enumerate(panel.series.items()):
            values = [v for _, v in points]
            last = values[-1] if values else None
            over = panel.threshold is not None and last is not None and last > panel.threshold
            table.add_row(
                title if i == 0 else "",
                label,
                Text(sparkline(on_time_axis(data, points)), style="red" if over else "cyan"),
                Text(_number(last), style="red" if over else ""),
                _number(max(values) if values else None),
            )
        table.add_section()
    return table


def frame(data: DashboardData, *, live: bool = False) -> RenderableType:
    """One screen: a header with the current figures, then the panels (``live``: and how to
    quit)."""
    s = data.stats
    w = s.window
    header = Text.assemble(
        (f"Constellation: {data.plan} ({data.environment})", "bold"),
        f"  {timestamp(data.end)}  ·  last {data.end - data.start:g}s, {data.cadence()}"
        f"  ·  {data.source}\n",
        f"{scope_line(s)}\n",
        f"queue {_number(s.queue.total)} · dead letter {_number(s.dead_letter.total)} · "
        f"processed {s.jobs.processed:,} · skipped {s.jobs.skipped:,} · "
        f"failed {s.jobs.failed:,} · error rate {_number(w.error_rate)} · "
        f"p95 {_number(w.processing_ms.p95)} ms · index "
        f"{', '.join(f'v{v} {n:,}' for v, n in s.index_size.items()) or '-'}",
    )
    if live:
        header.append("\nq or Ctrl-C to quit", style="dim")
    return Group(header, panels_table(data))


def dashboard(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Render one frame and exit.")] = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write a static HTML page with plots instead.", dir_okay=False),
    ] = None,
    range_: Annotated[
        str, typer.Option("--range", help="Time shown: seconds back from now (or 15m, 6h).")
    ] = "1h",
    interval: Annotated[
        str, typer.Option("--interval", help="Seconds between refreshes (or 10s, 1m).")
    ] = "5",
) -> None:
    """Queue depth, processing time, errors, batch sizes, query time and index size, live."""
    app_ctx = context.get(ctx)
    plan = app_ctx.plan()
    services = app_ctx.services(write=False)
    seconds = parse_seconds(range_) or 3600.0
    out = app_ctx.output
    if html is not None:
        from constellation.monitoring.report import read_report, write_report

        data = read_report(plan, services, range_seconds=seconds)
        write_report(data, html)
        out.result(f"wrote {html} ({len(data.panels)} plots)")
        return
    data = read_dashboard(plan, services, range_seconds=seconds)
    if once:
        out.render(frame(data))
        return
    pause = parse_seconds(interval) or 5.0
    # Quitting is how a live dashboard ends: q, or Ctrl-C, both exit 0 (not "interrupted").
    try:
        with (
            keys() as pressed,
            Live(frame(data, live=True), console=out.out, screen=False, auto_refresh=False) as live,
        ):
            while pressed(pause) != "q":
                latest = read_dashboard(plan, services, range_seconds=seconds)
                live.update(frame(latest, live=True), refresh=True)
    except KeyboardInterrupt:
        pass
    out.info("dashboard closed")


@contextmanager
def keys() -> Iterator[Callable[[float], str]]:
    """``pressed(timeout)``: the key pressed within ``timeout`` seconds ("" for none). On a
    terminal, keys are read one at a time without echo (the terminal is restored after);
    elsewhere it only waits."""
    stdin = sys.stdin
    if not stdin.isatty():

        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""

        yield wait
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 1).decode(errors="replace").lower() if ready else ""

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
