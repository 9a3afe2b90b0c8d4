"""The operator's first hour, feedback: a spinner while the model loads, a bar for phase 1's
drain, rates measured before they are shown (issue 16). The dashboard's keys (q, Ctrl-C) are
tested in real terminals in tests/terminal/."""

from __future__ import annotations

import io
import time

from rich.console import Console

from cli.output import Output, Rate
from constellation.queues.port import QueueDepth
from constellation.worker import WorkerStatus
from phases.migrate.drain import DRAIN_BAR, drain_progress


def test_a_rate_is_shown_only_once_a_second_has_been_measured() -> None:
    now = [100.0]
    rate = Rate(clock=lambda: now[0])
    assert rate.add(200) == ""  # the first chunk: its duration is unknown, it never counts
    now[0] += 0.001
    assert rate.add(200) == ""  # not 200,000/s: too little measured
    now[0] += 1.999
    assert rate.add(200) == "200.0/s"  # 400 since the first update, over 2 s


def _status(processed: int, visible: int, dead: int = 0) -> WorkerStatus:
    return WorkerStatus(
        stats={"processed": processed, "skipped": 0, "empty": 0, "dead_lettered": {"x": dead}},
        in_flight_batches=0,
        held_messages=0,
        queue_depth=QueueDepth(visible, 0),
        consumer_enabled=True,
    )


def test_the_drain_bar_counts_stored_of_sent_with_a_total() -> None:
    seen: list[tuple[str, int | None, int]] = []
    on_status = drain_progress(None, lambda *a: seen.append(a))  # type: ignore[arg-type]
    on_status(_status(20, 80))
    on_status(_status(60, 40))
    on_status(_status(99, 0, dead=1))
    assert seen == [(DRAIN_BAR, 100, 20), (DRAIN_BAR, 100, 40), (DRAIN_BAR, 100, 40)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_model_load_shows_a_spinner_on_a_terminal_and_nothing_elsewhere() -> None:
    screen = _Terminal()
    out = Output(stderr=Console(file=screen, force_terminal=True, width=80))
    with out.loading("all-MiniLM-L6-v2"):
        time.sleep(0.3)  # the spinner draws at once and then several times a second
    assert "loading the model all-MiniLM-L6-v2" in screen.getvalue()

    piped = io.StringIO()
    quiet = Output(stderr=Console(file=piped, width=80))
    with quiet.loading("all-MiniLM-L6-v2"):
        pass
    assert piped.getvalue() == ""


def test_a_load_inside_a_progress_display_joins_it() -> None:
    screen = _Terminal()
    out = Output(stderr=Console(file=screen, force_terminal=True, width=100))
    with out.tracker() as tracker:
        tracker.advance("backfill", 10, 1)
        with out.loading("all-MiniLM-L6-v2"):  # no second live display (Rich would refuse)
            time.sleep(0.3)
    assert "loading the model all-MiniLM-L6-v2" in screen.getvalue()


def test_a_bar_advances_after_a_spinner_inside_it_has_gone() -> None:
    """A spinner's task removed from the display shifts the positions of the bars after it:
    the next advance of a later bar (with its total learnt then) must still find its own bar
    (issue 23: ``IndexError`` in every real terminal)."""
    screen = _Terminal()
    out = Output(stderr=Console(file=screen, force_terminal=True, width=100))
    with out.tracker() as tracker:
        with out.loading("all-MiniLM-L6-v2"):
            tracker.advance("backfill", None, 1)
        tracker.advance("backfill", 10, 4)  # the bar's total, learnt later
        tracker.advance("worker", 10, 10)
    assert "backfill" in screen.getvalue()
    assert "10/10" in screen.getvalue()
