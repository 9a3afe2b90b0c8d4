"""Running the real CLI in tests: Typer's CliRunner in an isolated environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

#: the repository root (plans/, monitoring/ ...)
REPO = Path(__file__).resolve().parents[2]

#: ``invoke("--plan", p, "describe", "--json")`` → Result
Invoke = Callable[..., Result]
