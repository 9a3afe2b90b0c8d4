"""The notes source and the migration state on a real PostgreSQL server (started by the tests).

The app's table is the app's own: a text primary key, its own column names, ``timestamptz``
times, 100,000 rows. The state database is shared by several router processes at once.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise

import pytest
import sqlalchemy as sa

from constellation.errors import StateError
from constellation.ledger.comparisons import ComparisonLog
from constellation.ledger.db import engine
from constellation.ledger.failures import FailureLog
from constellation.ledger.state import StateStore
from constellation.migration.source import NotesSource
from constellation.queues.port import BatchResult, Outgoing
from phases.migrate import backfill
from tests.support.cli import REPO
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.servers

ROWS = 100_000
COLUMNS = {
    "id": "id",
    "user": "owner",
    "content": "body",
    "created": "created_at",
    "updated": "updated_at",
}
#: created_at of row i is T0 + i seconds
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def notes_url(postgres: PostgresServer) -> str:
    """The app's notes table with 100,000 rows, made by the app's own SQL."""
    url = postgres.database("notes")
    db = engine(url)
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE app_notes (id text PRIMARY KEY, owner text NOT NULL, "
                "body text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO app_notes SELECT 'n-' || lpad(i::text, 6, '0'), 'user-' || (i % 37), "
                "'note number ' || i || ' about ' || md5(i::text), "
                ":t0 + i * interval '1 second', NULL FROM generate_series(1, :rows) AS i"
            ),
            {"t0": T0, "rows": ROWS},
        )
    db.dispose()
    return url


@pytest.fixture
def source(notes_url: str) -> Iterator[NotesSource]:
    notes = NotesSource(notes_url, "app_notes", COLUMNS)
    yield notes
    notes.close()


def test_keyset_pages_read_100k_rows_in_id_order_with_flat_memory(source: NotesSource) -> None:
    assert source.count() == ROWS
    live: dict[int, int] = {}  # objects alive after so many notes: flat if nothing piles up
    seen = 0
    last = ""
    first_created = 0
    for note in source.iter_notes(page=500):
        assert note.id > last  # strictly increasing: no row twice, none skipped below
        last = note.id
        if seen == 0:
            first_created = note.created
        seen += 1
        if seen in (10_000, 50_000, ROWS):
            gc.collect()
            live[seen] = len(gc.get_objects())
    assert seen == ROWS and last == f"n-{ROWS:06d}"
    # 90,000 more notes read, and no more objects alive than one page's worth of difference
    assert live[ROWS] - live[10_000] < 1_000, live
    assert first_created == int(T0.timestamp() * 1000) + 1000  # timestamptz → epoch ms


class CountingQueue:
    """A queue that keeps the bodies it was sent (the backfill's target here)."""

    name = "counting"

    def __init__(self, crash_after: int | None = None) -> None:
        self.bodies: list[str] = []
        self.crash_after = crash_after

    def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        if self.crash_after is not None and len(self.bodies) >= self.crash_after:
            raise KeyboardInterrupt  # the operator's machine dies mid-backfill
        self.bodies += [m.body for m in messages]
        return BatchResult(succeeded=[str(i) for i in range(len(messages))])


def test_backfill_on_postgres_resumes_after_a_crash_and_sends_every_note(
    source: NotesSource, postgres: PostgresServer
) -> None:
    state = StateStore(postgres.database("state"), "notes", "test")
    crashing = CountingQueue(crash_after=40_000)
    with pytest.raises(KeyboardInterrupt):
        backfill.backfill(source, crashing, state, [1], batch_size=500)  # type: ignore[arg-type]
    assert state.cursor(backfill.cursor_name([1])) == "n-040000"
    left, after = backfill.remaining(source, state, [1])
    assert (left, after) == (ROWS - 40_000, "n-040000")

    resumed = CountingQueue()
    report = backfill.backfill(source, resumed, state, [1], batch_size=500)  # type: ignore[arg-type]
    assert report.resumed_after == "n-040000" and report.sent == ROWS - 40_000
    ids = [json.loads(b)["noteId"] for b in crashing.bodies + resumed.bodies]
    assert len(ids) == ROWS == len(set(ids))  # every note once: the crash fell between batches
    state.close()


def test_changed_since_is_filtered_by_the_database_on_timestamptz(
    postgres: PostgresServer,
) -> None:
    url = postgres.database("changed")
    db = engine(url)
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE app_notes (id text PRIMARY KEY, owner text, body text, "
                "created_at timestamptz, updated_at timestamptz)"
            )
        )
        rows = [
            ("old", "2026-01-01 00:00:00+00", None),
            ("edited", "2026-01-01 00:00:00+00", "2026-03-01 12:00:00+02"),
            ("created", "2026-03-01 10:00:01+00", None),
            ("just-before", "2026-03-01 09:59:59+00", "2026-03-01 09:59:59+00"),
        ]
        for note_id, created, updated in rows:
            conn.execute(
                sa.text("INSERT INTO app_notes VALUES (:i, 'u', 'text', :c, :u)"),
                {"i": note_id, "c": created, "u": updated},
            )
    db.dispose()
    notes = NotesSource(url, "app_notes", COLUMNS)
    since = int(datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
    # "2026-03-01 12:00:00+02" is 10:00 UTC: at the bound, so included
    assert [n.id for n in notes.changed_since(since)] == ["created", "edited"]
    assert [n.id for n in notes.changed_since(None)] == sorted(r[0] for r in rows)
    assert notes.existing(["old", "gone", "created"]) == {"old", "created"}
    notes.close()


def test_state_journal_and_logs_shared_by_router_processes(postgres: PostgresServer) -> None:
    url = postgres.database("shared")  # fresh: the routers create the tables at the same time
    routers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.pg_router", url, "notes", "production", "5"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.0)
    operator = StateStore(url, "notes", "production")
    for traffic in (0.2, 0.5, 1.0):
        operator.change("traffic set", f"to {traffic}", read_traffic=traffic)
        time.sleep(0.3)
    outputs = []
    for router in routers:
        out, err = router.communicate(timeout=120)
        assert router.returncode == 0, err
        outputs.append(json.loads(out))
    for seen in (o["seen"] for o in outputs):
        assert seen == sorted(seen) and seen[-1] == 1.0  # each saw the changes, in order
        assert set(seen) <= {0.0, 0.2, 0.5, 1.0}
    recorded = sum(o["recorded"] for o in outputs)
    assert len(ComparisonLog(url, "notes", "production").since(0.0)) == recorded
    assert len(FailureLog(url, "notes", "production").since(0.0)) == recorded
    assert ComparisonLog(url, "notes", "staging").since(0.0) == []  # one log per environment
    journal = operator.journal()
    assert [(e.changes["read_traffic"]) for e in journal] == [(0.0, 0.2), (0.2, 0.5), (0.5, 1.0)]
    operator.close()


def test_two_operators_at_once_lose_neither_change(postgres: PostgresServer) -> None:
    url = postgres.database("operators")
    first, second = StateStore(url, "notes", "test"), StateStore(url, "notes", "test")
    refused: list[StateError] = []

    def operate(store: StateStore, field: str, values: list[object]) -> None:
        for value in values:
            try:
                store.change("operator", f"{field}={value}", **{field: value})
            except StateError as exc:  # refused out loud, never lost silently
                refused.append(exc)

    traffic = [i / 40 for i in range(1, 21)]
    switch = [i % 2 == 0 for i in range(1, 21)]
    with ThreadPoolExecutor(2) as pool:  # .result(): any other error fails the test
        for done in [
            pool.submit(operate, first, "read_traffic", traffic),
            pool.submit(operate, second, "consumer_enabled", switch),
        ]:
            done.result()
    journal = first.journal(100)
    assert len(journal) == 40 - len(refused)
    # Serialized: every change started from the state the previous one left, so none was lost.
    for earlier, later in pairwise(journal):
        assert {k: v for k, v in later.before.items() if k != "updated_at"} == {
            k: v for k, v in earlier.after.items() if k != "updated_at"
        }
    final = first.read()
    last = {e.reason.split("=")[0]: e.after for e in journal}
    assert final.read_traffic == last["read_traffic"]["read_traffic"]
    assert final.consumer_enabled == last["consumer_enabled"]["consumer_enabled"]
    first.close()
    second.close()


def test_a_statement_past_its_time_limit_is_given_up(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from constellation.ledger import db as db_module

    monkeypatch.setattr(db_module, "PG_STATEMENT_TIMEOUT_MS", 500)
    slow = engine(postgres.database("slow"))
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"), slow.connect() as c:
        c.execute(sa.text("SELECT pg_sleep(30)"))
    assert time.monotonic() - started < 10
    slow.dispose()


def test_a_server_that_never_answers_fails_the_state_within_its_connect_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from constellation.errors import DatabaseUnreachable
    from constellation.ledger import db as db_module
    from tests.support.slow_http import silent_server

    monkeypatch.setattr(db_module, "PG_CONNECT_TIMEOUT", 2)
    with silent_server() as http_url:
        port = http_url.rsplit(":", 1)[1]
        started = time.monotonic()
        with pytest.raises(DatabaseUnreachable, match="cannot connect to the database") as e:
            StateStore(f"postgresql://app:pw@127.0.0.1:{port}/state", "notes", "local")
    assert time.monotonic() - started < 15
    assert "app:***@127.0.0.1" in str(e.value) and "app:pw@" not in str(e.value)
