"""All terminal output: results to stdout (tables or ``--json``), diagnostics to stderr.

Commands never call ``print``; they go through the one :class:`Output` of the invocation, kept
on the app context (:mod:`cli.context`). A command hands its result to :meth:`Output.show` with
the renderer of that result's type: with ``--json`` the result is printed as JSON instead, so no
command tests for ``--json`` itself. Long work shows a spinner or a progress bar on stderr when
stderr is a terminal, and stays quiet otherwise (logs, CI, pipes).

Output that is not a terminal (a pipe, a file) is never cut or wrapped at 80 columns: it gets
the whole line (``COLUMNS``, where set, still decides). A table wider than the terminal is drawn
as one key/value block per row instead of squeezing its columns to ``migrat…``. Points in time
are ISO 8601 (UTC) in JSON (:mod:`constellation.jsondata`, as the HTTP service writes them) and
local time in tables (:func:`timestamp`); a result field holding one says so with
:data:`constellation.timefields.EPOCH_SECONDS` (or ``EPOCH_MS``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.table import Table
from rich.text import Text

from constellation.jsondata import jsonable

STYLES = {
    "ok": "green",
    "pass": "green",
    "created": "green",
    "unchanged": "dim",
    "checked": "cyan",
    "fail": "red",
    "firing": "red",
    "conflict": "red",
    "pending": "yellow",
    "warn": "yellow",
    "would create": "yellow",
}


R = TypeVar("R")

#: draws one result type as tables and lines: ``renderer(out, result)``
Renderer = Callable[["Output", R], None]


#: the width of output that is not a terminal: long enough never to cut a line
UNLIMITED = 10_000


class Output:
    """The one output object of a command run."""

    def __init__(
        self,
        json_mode: bool = False,
        *,
        stdout: Console | None = None,
        stderr: Console | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.out = stdout or console(stderr=False)
        self.err = stderr or console(stderr=True)
        #: the live progress display, while one runs (a spinner joins it instead of a second one)
        self._live: Progress | None = None
        #: the spinner, while one runs (a second one changes its text instead), and its text
        self._spinner: Status | None = None
        self._spinner_text = ""

    # results -------------------------------------------------------------------------------
    def show(
        self,
        result: R,
        renderer: Renderer[R],
        *,
        as_json: Callable[[R], Any] | None = None,
    ) -> None:
        """Print a command's result: as JSON with ``--json`` (its fields, or ``as_json(result)``
        where the JSON has another shape), else drawn by ``renderer``."""
        if self.json_mode:
            self.json(result if as_json is None else as_json(result))
        else:
            renderer(self, result)

    def json(self, data: Any) -> None:
        """Results as JSON on stdout, nothing else."""
        self.out.print_json(json.dumps(jsonable(data)), highlight=False)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        caption: str | None = None,
    ) -> None:
        """A table; one key/value block per row where the table is wider than the terminal."""
        # The title goes above the table as a line of its own: a table's title wraps at the
        # table's width, which cut "a few of the sample app's users" in two.
        table = Table(caption=caption, header_style="bold")
        for column in columns:
            numeric = rows and all(isinstance(r[columns.index(column)], int | float) for r in rows)
            table.add_column(column, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*(self.cell(v) for v in row))
        natural = Measurement.get(self.out, self.out.options.update_width(UNLIMITED), table)
        if natural.maximum <= self.out.width or not rows:
            if title:
                self.out.print(Text(title, style="bold"), soft_wrap=True)
            self.out.print(table)
            return
        self._records(columns, rows, title=title, caption=caption)

    def _records(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None,
        caption: str | None,
    ) -> None:
        """A narrow terminal's table: each row as ``column  value`` lines, values folded."""
        if title:
            self.out.print(Text(title, style="bold"))
        if len(columns) == 2:  # already one key and one value a row
            block = Table.grid(padding=(0, 2))
            block.add_column(style="bold", overflow="fold")
            block.add_column(overflow="fold")
            for key, value in rows:
                block.add_row(self.cell(key), self.cell(value))
            self.out.print(block)
            self.out.print()
            return
        keys = [c or "item" for c in columns]
        for i, row in enumerate(rows):
            block = Table.grid(padding=(0, 2))
            block.add_column(style="bold", no_wrap=True)
            block.add_column(overflow="fold")
            for key, value in zip(keys, row, strict=True):
                block.add_row(key, self.cell(value))
            if i:
                self.out.print()
            self.out.print(block)
        if caption:
            self.out.print(Text(caption, style="dim"))
        self.out.print()

    def cell(self, value: Any) -> RenderableType:
        if value is None:
            return Text("-", style="dim")
        if isinstance(value, bool):
            return Text("yes" if value else "no")
        if isinstance(value, float):
            return Text(f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}")
        if isinstance(value, int):
            return Text(f"{value:,}")
        text = visible(str(value))
        return Text(text, style=STYLES.get(text, ""))

    def result(self, message: str) -> None:
        """A one-line result on stdout."""
        self.out.print(message, highlight=False)

    def render(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    # diagnostics -----------------------------------------------------------------------------
    # Diagnostics are soft-wrapped: the terminal wraps a long line, Rich never breaks one
    # (a path cut in two cannot be copied).
    def info(self, message: str) -> None:
        self.err.print(message, highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)

    # long work -------------------------------------------------------------------------------
    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner while work runs; yields a function that updates its text. Inside a
        progress display the spinner is one more line of it (one live display at a time)."""
        if not self.err.is_terminal:
            yield lambda _text: None
            return
        live = self._live
        if live is not None:
            task = live.add_task(message, total=None, rate="")
            try:
                yield lambda text: live.update(task, description=text)
            finally:
                live.remove_task(task)
            return
        spinner = self._spinner
        if spinner is not None:  # a spinner runs already: it says this meanwhile
            shown = self._spinner_text
            spinner.update(message)
            try:
                yield lambda text: spinner.update(text)
            finally:
                spinner.update(shown)
            return
        with self.err.status(message) as status:
            self._spinner, self._spinner_text = status, message

            def update(text: str) -> None:
                self._spinner_text = text
                status.update(text)

            try:
                yield update
            finally:
                self._spinner = None

    @contextmanager
    def loading(self, model: str) -> Iterator[None]:
        """While a model loads (tens of seconds the first time): a spinner that says so."""
        with self.status(f"loading the model {model}"):
            yield

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A progress bar with rate and ETA; yields ``advance(n)``."""
        if not self.err.is_terminal:
            yield lambda _n: None
            return
        with Progress(*_columns(), console=self.err, transient=False) as bar:
            self._live = bar
            task = bar.add_task(description, total=total, rate="")
            rate = Rate()

            def advance(n: int) -> None:
                bar.advance(task, n)
                bar.update(task, rate=rate.add(n))

            try:
                yield advance
            finally:
                self._live = None

    @contextmanager
    def tracker(self) -> Iterator[Tracker]:
        """Progress bars for work of several kinds (backfill, worker, checks), with rate and ETA."""
        if not self.err.is_terminal:
            yield Tracker(None)
            return
        with Progress(*_columns(), console=self.err) as progress:
            self._live = progress
            try:
                yield Tracker(progress)
            finally:
                self._live = None


def _columns() -> list[Any]:
    """A progress bar's columns: what, bar, done/total, %, rate, elapsed, ETA."""
    return [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]


class Tracker:
    """Several named progress bars; ``advance(what, total, n)`` creates a bar on first sight."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int | None] = {}
        self._rates: dict[str, Rate] = {}

    def advance(self, what: str, total: int | None, n: int) -> None:
        if self._progress is None:
            return
        if what not in self._tasks:
            self._tasks[what] = self._progress.add_task(what, total=total, rate="")
            self._totals[what] = total
            self._rates[what] = Rate()
        task = self._tasks[what]
        # Our own record of each bar's total: ``Progress.tasks`` is a list whose positions
        # shift when a spinner's task (``Output.status`` inside the display) is removed, so a
        # task id is no index into it.
        if total is not None and self._totals[what] != total:
            self._totals[what] = total
            self._progress.update(task, total=total)  # a total learnt later (a drain's)
        self._progress.advance(task, n)
        self._progress.update(task, rate=self._rates[what].add(n))

    def note(self, text: str) -> None:
        """A line above the bars."""
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)


class Rate:
    """Items per second, measured: from the first update on, so the work done before it (of
    unknown duration) never counts, and shown only once a second has been measured. No
    ``9,001.5/s`` from a first chunk over a few microseconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, settle: float = 1.0) -> None:
        self.clock = clock
        self.settle = settle
        self._first: float | None = None
        self._since_first = 0

    def add(self, n: int) -> str:
        """Count ``n`` more; the rate to show ("" while too little has been measured)."""
        now = self.clock()
        if self._first is None:
            self._first = now
            return ""
        self._since_first += n
        elapsed = now - self._first
        if elapsed < self.settle:
            return ""
        return f"{self._since_first / elapsed:,.1f}/s"


def console(*, stderr: bool) -> Console:
    """A console for stdout or stderr: the terminal's width on a terminal; elsewhere (a pipe,
    a file) ``COLUMNS`` if set, else long enough that nothing is cut."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else UNLIMITED
    return Console(stderr=stderr, soft_wrap=False, width=width)


def timestamp(epoch: float | None) -> str:
    """Local time for tables (``-`` for none)."""
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def timestamp_ms(epoch_ms: float | None) -> str:
    """Local time for tables from epoch milliseconds (the job contract's ``created``)."""
    return timestamp(None if epoch_ms is None else epoch_ms / 1000)


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on shown escaped (``\\x1b``,
    ``\\n``): names from outside (file names, page titles) must not recolour the terminal or
    split a table's row."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
