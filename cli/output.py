"""All terminal output: results to stdout (tables or ``--json``), diagnostics to stderr.

Commands never call ``print``; they go through the one :class:`Output` of the invocation, kept
on the app context (:mod:`cli.context`). A command hands its result to :meth:`Output.show` with
the renderer of that result's type: with ``--json`` the result is printed as JSON instead, so no
command tests for ``--json`` itself. Long work shows a spinner or a progress bar on stderr when
stderr is a terminal, and stays quiet otherwise (logs, CI, pipes).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console, RenderableType
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
from rich.table import Table
from rich.text import Text

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


def jsonable(value: Any) -> Any:
    """Plain JSON data from dataclasses, paths, enums and the like."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in getattr(type(value), "__json_properties__", ()):
            data[name] = jsonable(getattr(value, name))
        return data
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


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
        self.out = stdout or Console(soft_wrap=False)
        self.err = stderr or Console(stderr=True)

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
        table = Table(title=title, caption=caption, title_justify="left", header_style="bold")
        for column in columns:
            numeric = rows and all(isinstance(r[columns.index(column)], int | float) for r in rows)
            table.add_column(column, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*(self.cell(v) for v in row))
        self.out.print(table)

    def cell(self, value: Any) -> RenderableType:
        if value is None:
            return Text("-", style="dim")
        if isinstance(value, bool):
            return Text("yes" if value else "no")
        if isinstance(value, float):
            return Text(f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}")
        if isinstance(value, int):
            return Text(f"{value:,}")
        text = str(value)
        return Text(text, style=STYLES.get(text, ""))

    def result(self, message: str) -> None:
        """A one-line result on stdout."""
        self.out.print(message, highlight=False)

    def render(self, renderable: RenderableType) -> None:
        self.out.print(renderable)

    # diagnostics -----------------------------------------------------------------------------
    def info(self, message: str) -> None:
        self.err.print(message, highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}", highlight=False)

    def error(self, message: str) -> None:
        self.err.print(Text("error: ", style="bold red") + Text(message))

    # long work -------------------------------------------------------------------------------
    @contextmanager
    def status(self, message: str) -> Iterator[Callable[[str], None]]:
        """A spinner while work runs; yields a function that updates its text."""
        if not self.err.is_terminal:
            yield lambda _text: None
            return
        with self.err.status(message) as status:
            yield lambda text: status.update(text)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A progress bar with rate and ETA; yields ``advance(n)``."""
        if not self.err.is_terminal:
            yield lambda _n: None
            return
        started = time.monotonic()
        with Progress(*_columns(), console=self.err, transient=False) as bar:
            task = bar.add_task(description, total=total, rate="")

            def advance(n: int) -> None:
                bar.advance(task, n)
                done = bar.tasks[0].completed
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.update(task, rate=f"{done / elapsed:,.1f}/s")

            yield advance

    @contextmanager
    def tracker(self) -> Iterator[Tracker]:
        """Progress bars for work of several kinds (backfill, worker, checks), with rate and ETA."""
        if not self.err.is_terminal:
            yield Tracker(None)
            return
        with Progress(*_columns(), console=self.err) as progress:
            yield Tracker(progress)


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

    def advance(self, what: str, total: int | None, n: int) -> None:
        if self._progress is None:
            return
        if what not in self._tasks:
            self._tasks[what] = self._progress.add_task(what, total=total, rate="")
        task = self._tasks[what]
        self._progress.advance(task, n)
        state = self._progress.tasks[task]
        if state.elapsed:
            self._progress.update(task, rate=f"{state.completed / state.elapsed:,.1f}/s")

    def note(self, text: str) -> None:
        """A line above the bars."""
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)


def timestamp(epoch: float | None) -> str:
    """Local time for tables (``-`` for none)."""
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
