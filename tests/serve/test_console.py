"""The browser console in Debian's headless chromium, against ``constellation serve --worker``
over real sockets, during phase 2 of the session's served app (see conftest.py).

The page opens with a read token and shows the phase, the traffic and the gate the CLI shows;
a ``traffic set`` from the CLI (a real process) shows within 5 s; promote, pause and abort work
with a write token, through the command line's own functions and journal, and are refused
with a read token; an abort from the page leaves the same state and journal entry as
``rollback quick``. No console errors; screenshots at 1,280 and 400 px, light and dark, are
kept under ``.artifacts/console`` (printed at the end of the run).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from constellation.ledger.notes import Notes, step_started_at
from phases.migrate.phase2 import phase2
from phases.sample_notes import search_phrases
from tests.serve.conftest import AppServer
from tests.support.browser import chromium, screenshot, watched_page
from tests.support.serve import CONSTELLATION, READ_TOKEN, TOKEN_ENV, WRITE_TOKEN

pytestmark = [pytest.mark.model, pytest.mark.browser]

#: a CLI change must show in the page within this many seconds (the issue's bound)
FOLLOW_BOUND = 5.0


def cli(app: AppServer, *args: str) -> dict[str, Any]:
    """``constellation --plan P ARGS --json`` as its own process; its JSON."""
    done = subprocess.run(
        [CONSTELLATION, "--plan", str(app.plan_path), *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **TOKEN_ENV, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def search(app: AppServer, count: int, seed: int) -> None:
    """``count`` of the app's searches through ``/search``: each one logs a comparison."""
    phrases = search_phrases(app.notes, seed=seed)
    for _ in range(count):
        user, text = next(phrases)
        answer = app.serve.call("POST", "/search", {"text": text, "userId": user})
        assert answer.status == 200, answer


def comparisons_since_step(app: AppServer) -> int:
    with app.migration() as m:
        since = step_started_at(m.state.read().notes)
        return m.comparisons.summary(since).comparisons


def feed_gate(app: AppServer, seed: int) -> None:
    """Searches until the current step's gate has its comparisons (the service logs them
    after answering: wait for them)."""
    enough = app.plan.migration.traffic.min_comparisons + 2
    search(app, enough, seed)
    deadline = time.monotonic() + 60
    while comparisons_since_step(app) < enough:
        assert time.monotonic() < deadline, "the service logged too few comparisons"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def phase2_app(app_server: AppServer) -> Iterator[AppServer]:
    """The served app at phase 2's first step (20%), with comparisons to draw."""
    app = app_server
    with app.migration() as m:
        m.state.change("test", "fresh comparisons", notes=Notes(step_started_at=m.clock()))
    feed_gate(app, seed=5)
    with app.migration() as m:
        report = phase2(m, mode="step", reason="console tests: the first step")
        assert report.ok, report.message
    search(app, 12, seed=6)
    try:
        yield app
    finally:
        with app.migration() as m:
            if m.state.read().paused:
                m.state.change("test", "restore", paused=False)
        app.restore()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def sign_in(page: Page, url: str, token: str) -> None:
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#console")).to_be_visible()
    expect(page.locator("#summary")).not_to_be_empty()


def traffic_shown(page: Page) -> str:
    return page.locator("#state dd.big").inner_text()


def test_the_page_shows_what_the_cli_shows_with_a_read_token(
    phase2_app: AppServer, browser: Browser
) -> None:
    app = phase2_app
    status = cli(app, "migrate", "status")
    for dark in (False, True):
        for width in (1280, 400):
            with watched_page(browser, width=width, dark=dark) as watched:
                page = watched.page
                sign_in(page, app.serve.url, READ_TOKEN)
                expect(page.locator("#summary")).to_have_text(status["summary"])
                assert traffic_shown(page) == f"{status['state']['read_traffic']:.0%}" == "20%"
                expect(page.locator("#state")).to_contain_text(status["state"]["write_mode"])
                expect(page.locator("#phases li.current")).to_have_text("2 read migration")
                expect(page.locator("#next-step")).to_have_text(status["next_step"])
                # the gate: every check the CLI evaluates, and the comparisons it stands on
                names = [c["name"] for c in status["gate"]["checks"]]
                rows = page.locator("#gate-table tbody tr")
                expect(rows).to_have_count(len(names))
                for i, name in enumerate(names):
                    expect(rows.nth(i).locator("td").first).to_have_text(name)
                expect(page.locator("#gate-summary")).to_contain_text("stands on")
                # the journal: the step the CLI's function took, who and why
                first = page.locator("#journal-table tbody tr").first
                expect(first).to_contain_text("migrate phase 2")
                expect(first).to_contain_text("gate passed (comparisons since the last step")
                expect(first).to_contain_text(status["journal"][-1]["who"])
                # old beside new, drawn (uPlot draws on a canvas) once the figures arrived
                for chart in ("overlap", "latency", "errors", "distribution"):
                    expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
                expect(page.locator("#chart-panel-index_size canvas")).to_have_count(1)
                expect(page.locator("#alerts-table tbody tr")).to_have_count(
                    len(app.plan.monitoring.alerts)
                )
                expect(page.locator("#models-table tbody tr").first).to_contain_text("v1")
                # the token: in session storage only, never in the page, the URL or a cookie
                assert READ_TOKEN not in page.content() and READ_TOKEN not in page.url
                assert page.evaluate("document.cookie") == ""
                stored = page.evaluate("sessionStorage.getItem('constellation.token')")
                assert stored == READ_TOKEN
                scheme = "dark" if dark else "light"
                screenshot(page, f"console-{width}px-{scheme}")
                if width == 400:  # nothing wider than a phone's screen
                    assert page.evaluate("document.documentElement.scrollWidth") <= 400
                assert watched.errors == []


def test_a_traffic_change_from_the_cli_shows_within_five_seconds(
    phase2_app: AppServer, browser: Browser
) -> None:
    app = phase2_app
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, app.serve.url, READ_TOKEN)
        assert traffic_shown(page) == "20%"
        changed = cli(app, "traffic", "set", "0.5", "--reason", "console test: by hand")
        assert changed["read_traffic"] == 0.5
        started = time.monotonic()
        expect(page.locator("#state dd.big")).to_have_text("50%", timeout=FOLLOW_BOUND * 1000)
        assert time.monotonic() - started < FOLLOW_BOUND
        expect(page.locator("#journal-table tbody tr").first).to_contain_text(
            "console test: by hand"
        )
        cli(app, "traffic", "set", "0.2", "--reason", "console test: back")
        expect(page.locator("#state dd.big")).to_have_text("20%", timeout=FOLLOW_BOUND * 1000)
        assert watched.errors == []


def act(page: Page, action: str, reason: str) -> str:
    """Click ``action``, read the confirmation (what will change), type the reason, confirm;
    returns the confirmation's text."""
    page.click(f"button[data-action={action}]")
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    shown = dialog.inner_text()
    page.fill("#confirm-reason", reason)
    page.click("#confirm-go")
    expect(dialog).to_be_hidden()
    return shown


def test_a_read_token_is_refused_every_action(phase2_app: AppServer, browser: Browser) -> None:
    app = phase2_app
    before = cli(app, "migrate", "status")["state"]
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, app.serve.url, READ_TOKEN)
        for action in ("promote", "pause", "abort"):
            page.click(f"button[data-action={action}]")
            result = page.locator("#action-result")
            expect(result).to_contain_text("Refused", timeout=10_000)
            expect(result).to_contain_text(f"/migration/{action} needs write")
            expect(page.locator("#confirm")).to_be_hidden()
        # the browser reports each refused call (403) as a console error; nothing else
        assert watched.unexpected("status of 403") == []
        assert len(watched.errors) == 3
    after = cli(app, "migrate", "status")["state"]
    assert after == before


def test_promote_and_pause_with_a_write_token(phase2_app: AppServer, browser: Browser) -> None:
    app = phase2_app
    feed_gate(app, seed=7)
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, app.serve.url, WRITE_TOKEN)
        shown = act(page, "promote", "console test: gate looks fine")
        assert "read traffic to 50%" in shown
        assert "constellation migrate phase 2 --step" in shown
        expect(page.locator("#action-result")).to_contain_text("read traffic 50%")
        expect(page.locator("#state dd.big")).to_have_text("50%")
        status = cli(app, "migrate", "status")
        assert status["state"]["read_traffic"] == 0.5
        entry = status["journal"][-1]
        assert (entry["command"], entry["who"]) == ("migrate phase 2", "console (token app)")
        assert entry["reason"].endswith("read traffic to 50%")  # the gate's evidence, then it

        shown = act(page, "pause", "console test: hold here")
        assert "paused False → True" in shown
        expect(page.locator("#summary")).to_contain_text("paused")
        # promoting while paused is refused with the CLI's own message
        page.click("button[data-action=promote]")
        expect(page.locator("#action-result")).to_contain_text(
            "phase 2 is paused at 50% read traffic"
        )
        expect(page.locator("#action-result")).to_contain_text("constellation migrate resume")
        act(page, "resume", "console test: go on")
        expect(page.locator("#summary")).not_to_contain_text("paused")
        assert watched.unexpected("status of 409") == []
    journal = cli(app, "migrate", "status", "--tail", "3")["journal"]
    assert [(e["command"], e["reason"]) for e in journal[-2:]] == [
        ("migrate pause", "console test: hold here"),
        ("migrate resume", "console test: go on"),
    ]


def comparable(entry: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A journal entry without when and who: the command, the reason and what changed."""
    changed = {
        k: (entry["before"].get(k), v)
        for k, v in entry["after"].items()
        if k not in ("updated_at", "notes") and entry["before"].get(k) != v
    }
    return entry["command"], entry["reason"], changed


def test_an_abort_from_the_page_is_a_quick_rollback(
    phase2_app: AppServer, browser: Browser
) -> None:
    app = phase2_app
    reason = "console test: p95 alert"

    def at_a_step() -> dict[str, Any]:
        cli(app, "traffic", "set", "0.5", "--yes", "--reason", "console test: at 50%")
        return cli(app, "migrate", "status")["state"]

    start = at_a_step()
    assert start["read_traffic"] == 0.5 and start["consumer_enabled"]
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, app.serve.url, WRITE_TOKEN)
        shown = act(page, "abort", reason)
        assert "constellation rollback quick" in shown
        assert "read_traffic 0.0" in shown and "consumer_enabled False" in shown
        expect(page.locator("#state dd.big")).to_have_text("0%")
        expect(page.locator("#state")).to_contain_text("disabled")
        assert watched.errors == []
    from_page = cli(app, "migrate", "status")
    app.restore()

    ignore = ("updated_at", "notes")
    again = at_a_step()  # the same situation again, for the command line's rollback
    assert {k: v for k, v in again.items() if k not in ignore} == {
        k: v for k, v in start.items() if k not in ignore
    }
    cli(app, "rollback", "quick", "--reason", reason)
    from_cli = cli(app, "migrate", "status")
    assert {k: v for k, v in from_page["state"].items() if k not in ignore} == {
        k: v for k, v in from_cli["state"].items() if k not in ignore
    }
    page_entry, cli_entry = from_page["journal"][-1], from_cli["journal"][-1]
    assert comparable(page_entry) == comparable(cli_entry)
    assert comparable(page_entry)[:2] == ("rollback quick", reason)
    assert page_entry["who"] == "console (token app)" and cli_entry["who"].count("@") == 1
