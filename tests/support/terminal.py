"""The CLI in a real pseudo-terminal, as a person runs it.

pexpect starts ``constellation`` on a pty of a given size (the program learns its width from the
terminal, as it does for a person: no ``COLUMNS``), and pyte draws everything it writes as a
terminal would, cursor moves and redraws of live displays included. :meth:`Terminal.shows` is
then what a person sees, scrollback included, one string per screen line.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pyte

from tests.support.cli import REPO

#: the installed console script, beside the interpreter running the tests
CONSTELLATION = str(Path(sys.executable).with_name("constellation"))
#: what a test's environment may carry that a person's terminal would not (the width comes from
#: the pty, the plan from --plan)
IGNORED = (
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "CONSTELLATION_PLAN",
    "CONSTELLATION_DATA",
)
#: lines the drawn screen keeps: the whole run, so nothing scrolls away before it is read
SCROLLBACK = 3000


@dataclass(frozen=True)
class Finished:
    """A run that ended: its exit code (None when a signal ended it) and its screen."""

    exit_code: int | None
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class _Feed:
    """pexpect's ``logfile_read``: every byte the program writes goes to the drawn screen."""

    def __init__(self, stream: pyte.ByteStream) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.feed(data)

    def flush(self) -> None:
        pass


class Terminal:
    """``constellation ARGS`` on a pty ``columns`` wide and ``rows`` high, in ``cwd``."""

    def __init__(
        self,
        *args: str,
        columns: int,
        rows: int = 40,
        cwd: Path = REPO,
        env: dict[str, str] | None = None,
    ) -> None:
        self.columns = columns
        self._screen = pyte.Screen(columns, SCROLLBACK)
        self._stream = pyte.ByteStream(self._screen)
        environment = {k: v for k, v in os.environ.items() if k not in IGNORED}
        environment.update({"TERM": "xterm-256color", **(env or {})})
        self.child = pexpect.spawn(
            CONSTELLATION,
            list(args),
            dimensions=(rows, columns),
            env=environment,
            cwd=str(cwd),
        )
        self.child.logfile_read = _Feed(self._stream)

    def expect(self, text: str, timeout: float) -> None:
        """Wait until ``text`` has been written (failing with the screen so far)."""
        try:
            self.child.expect_exact(text, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            raise AssertionError(
                f"{text!r} not shown within {timeout:g}s; the screen:\n{self.text()}"
            ) from exc

    def press(self, key: str) -> None:
        """A key typed on the terminal."""
        self.child.send(key)

    def ctrl_c(self) -> None:
        """Ctrl-C typed on the terminal: the line discipline sends SIGINT to the program."""
        self.child.sendintr()

    def finish(self, timeout: float) -> Finished:
        """Wait for the program to end (killing it after ``timeout`` seconds)."""
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT as exc:
            self.child.kill(signal.SIGKILL)
            raise AssertionError(
                f"still running after {timeout:g}s; the screen:\n{self.text()}"
            ) from exc
        self.child.close()
        return Finished(self.child.exitstatus, self.lines())

    def lines(self) -> list[str]:
        """What the terminal shows, scrollback included, without trailing blank lines."""
        shown = [line.rstrip() for line in self._screen.display]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    def text(self) -> str:
        return "\n".join(self.lines())


def run(*args: str, columns: int, timeout: float, cwd: Path = REPO, rows: int = 40) -> Finished:
    """Run a command to its end on a terminal."""
    return Terminal(*args, columns=columns, rows=rows, cwd=cwd).finish(timeout)


def copy_folder(source: Path, target: Path) -> Path:
    """A copy of a plan's folder (plan, data), so a test may change it without touching others."""
    shutil.copytree(source, target)
    return target
