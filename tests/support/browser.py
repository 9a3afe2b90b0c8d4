"""Debian's chromium, headless, driven by Playwright (its own browser download is not used).

The browser is the machine's ``/usr/bin/chromium`` (``.ci/run`` installs it); a machine without
it fails these tests with the command that installs it: they are part of the suite, not
optional. Pages record every console error and uncaught exception, so a test can assert
there were none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.support.cli import REPO

CHROMIUM = Path(os.environ.get("CONSTELLATION_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: where the console's screenshots are kept for people to look at (printed at the end)
SCREENSHOTS = Path(os.environ.get("CONSTELLATION_SCREENSHOTS", REPO / ".artifacts" / "console"))


@contextmanager
def chromium() -> Iterator[Browser]:
    """The machine's chromium, headless, for the length of the block."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console's tests need Debian's chromium "
            "(`apt-get install -y chromium`; .ci/run installs it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page and what went wrong in it: console errors and uncaught exceptions."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def unexpected(self, *allowed: str) -> list[str]:
        """The errors that contain none of ``allowed``."""
        return [e for e in self.errors if not any(a in e for a in allowed)]


@contextmanager
def watched_page(
    browser: Browser, *, width: int = 1280, height: int = 900, dark: bool = False
) -> Iterator[Watched]:
    """A fresh tab (its own session storage) at ``width`` × ``height``."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme="dark" if dark else "light",
        service_workers="block",
    )
    page = context.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"exception: {exc}"))
    try:
        yield watched
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """The whole page as ``SCREENSHOTS/name.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
