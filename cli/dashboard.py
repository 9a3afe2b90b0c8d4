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
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli import context
from cli.monitor import scope_line
from cli.output import UNLIMITED, timestamp
from cli.params import seconds as parse_seconds
from constellation.monitoring.panels import DashboardData, PanelData, read_dashboard

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


def _title(panel: PanelData) -> Text:
    title = Text(panel.panel.title, style="bold")
    if panel.threshold is not None:
        title.append(f" (alert > {panel.threshold:g})", style="dim")
    return title


def _rows(panel: PanelData) -> Iterator[tuple[str, list[float], bool]]:
    """Each line of a panel: its label, its values in time order, and whether its latest value
    is over the panel's alert threshold."""
    for label, points in panel.series.items():
        values = [v for _, v in points]
        last = values[-1] if values else None
        over = panel.threshold is not None and last is not None and last > panel.threshold
        yield label, values, over


#: a panel title longer than this wraps within its cell of the wide table
TITLE_WIDTH = 28
#: narrower than this, a sparkline says too little to be drawn
MIN_SPARK = 20
#: the wide table's borders and padding: five columns, six rules, a space each side of a cell
TABLE_FRAME = 6 + 5 * 2


def _widths(data: DashboardData) -> tuple[int, int]:
    """The widest series label and the widest figure (at least as wide as "last"/"max")."""
    labels = [label for p in data.panels for label in p.series] or [""]
    figures = [_number(v) for p in data.panels for _, values, _ in _rows(p) for v in values]
    return max(map(len, labels)), max([4, *map(len, figures)])


def panels_table(data: DashboardData, spark_width: int | None = None) -> Table:
    """Every panel in one table: a section per panel, a row per line (a wide terminal). Titles
    wrap within their column; the sparkline is squeezed to ``spark_width`` characters."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("panel", max_width=TITLE_WIDTH)
    table.add_column("series", no_wrap=True)
    table.add_column("over time", no_wrap=True)
    table.add_column("last", justify="right", no_wrap=True)
    table.add_column("max", justify="right", no_wrap=True)
    for panel in data.panels:
        title = _title(panel)
        if not panel.series:
            table.add_row(title, Text(panel.panel.empty, style="dim"), "", "-", "-")
        for i, (label, values, over) in enumerate(_rows(panel)):
            axis = on_time_axis(data, panel.series[label])
            if spark_width is not None:
                axis = squeezed(axis, spark_width)
            table.add_row(
                title if i == 0 else "",
                label,
                Text(sparkline(axis), style="red" if over else "cyan"),
                Text(_number(values[-1] if values else None), style="red" if over else ""),
                _number(max(values) if values else None),
            )
        table.add_section()
    return table


def squeezed(values: list[float | None], width: int) -> list[float | None]:
    """A time axis of ``len(values)`` slots drawn in ``width`` characters: each character the
    highest value of the slots it covers (a peak is never averaged away), blank where none has
    data."""
    if width >= len(values):
        return values
    out: list[float | None] = []
    for i in range(width):
        part = values[i * len(values) // width : (i + 1) * len(values) // width]
        present = [v for v in part if v is not None]
        out.append(max(present) if present else None)
    return out


def panels_stacked(data: DashboardData, width: int) -> RenderableType:
    """Every panel as a title line and one line per series (a narrow terminal): label, the
    sparkline squeezed into what is left of the width, the last and the highest value, in
    columns of one width for every panel. Nothing is cut: the sparkline gives way first, and
    is left out when fewer than ``MIN_SPARK // 2`` characters are left for it."""
    label_width, number_width = _widths(data)
    figure_width = len("last ") + number_width
    # "  label sparkline last N max N": two spaces before, one between columns
    spark_width = width - (2 + label_width + 1 + 1 + 2 * (figure_width + 1))
    spark_width = min(spark_width, round((data.end - data.start) / data.step) + 1)
    spark = spark_width >= MIN_SPARK // 2
    parts: list[RenderableType] = []
    for panel in data.panels:
        parts.append(_title(panel))
        if not panel.series:
            parts.append(Text(f"  {panel.panel.empty}", style="dim"))
            continue
        grid = Table.grid(padding=(0, 1, 0, 0))
        grid.add_column(width=1)
        grid.add_column(no_wrap=True, width=label_width)
        if spark:
            grid.add_column(no_wrap=True, width=spark_width)
        grid.add_column(no_wrap=True, justify="right", width=figure_width)
        grid.add_column(no_wrap=True, justify="right", width=figure_width)
        for label, values, over in _rows(panel):
            style = "red" if over else ""
            cells: list[RenderableType] = ["", label]
            if spark:
                axis = squeezed(on_time_axis(data, panel.series[label]), spark_width)
                cells.append(Text(sparkline(axis), style="red" if over else "cyan"))
            cells.append(Text(f"last {_number(values[-1] if values else None)}", style=style))
            cells.append(f"max {_number(max(values) if values else None)}")
            grid.add_row(*cells)
        parts.append(grid)
    return Group(*parts)


def panels(data: DashboardData, width: int | None) -> RenderableType:
    """The panels for a console ``width`` wide (None: no limit): the table while its sparklines
    keep ``MIN_SPARK`` characters, else the stacked layout."""
    if width is None:
        return panels_table(data)
    label_width, number_width = _widths(data)
    titles = max(len(_title(p)) for p in data.panels)
    others = min(titles, TITLE_WIDTH) + label_width + 2 * number_width + TABLE_FRAME
    if width - others >= MIN_SPARK:
        return panels_table(data, width - others)
    return panels_stacked(data, width)


def frame(
    data: DashboardData, *, live: bool = False, console: Console | None = None
) -> RenderableType:
    """One screen: a header with the current figures, then the panels (``live``: and how to
    quit). The panels fit the console's width (:func:`panels`)."""
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
        f"batch p95 {_number(w.batch_ms.p95)} ms · index "
        f"{', '.join(f'v{v} {n:,}' for v, n in s.index_size.items()) or '-'}",
    )
    if live:
        header.append("\nq or Ctrl-C to quit", style="dim")
    width = None if console is None or console.width >= UNLIMITED else console.width
    return Group(header, panels(data, width))


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
        out.render(frame(data, console=out.out))
        return
    pause = parse_seconds(interval) or 5.0
    # Quitting is how a live dashboard ends: q, or Ctrl-C, both exit 0 (not "interrupted").
    try:
        with (
            keys() as pressed,
            Live(
                frame(data, live=True, console=out.out),
                console=out.out,
                screen=False,
                auto_refresh=False,
            ) as live,
        ):
            while pressed(pause) != "q":
                latest = read_dashboard(plan, services, range_seconds=seconds)
                live.update(frame(latest, live=True, console=out.out), refresh=True)
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
