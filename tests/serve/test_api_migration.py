"""The migration seen through ``constellation serve --worker`` over real HTTP: ``/notes`` writes
both sides while dual, ``/search`` follows a traffic step and a quick rollback, and their bad
bodies are 422s naming the field."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import pytest

from constellation.migration.router import bucket
from phases.migrate.rollback import rollback_quick
from phases.migrate.traffic import set_traffic
from tests.serve.conftest import AppServer
from tests.support.serve import ServeProcess, found

pytestmark = [pytest.mark.model]


def test_notes_write_both_sides_while_dual_and_search_finds_them(app: AppServer) -> None:
    user, note = f"writer-{uuid.uuid4().hex[:8]}", "fresh-note"
    text = "Saturday: repaint the garden fence in dark green"
    written = app.serve.call("POST", "/notes", {"userId": user, "noteId": note, "text": text})
    assert written.status == 202, written
    assert written.body == {"writeMode": "dual", "written": ["old", "new"], "failed": []}
    searched = app.serve.call("POST", "/search", {"text": "garden fence", "userId": user})
    assert searched.status == 200, searched
    # read traffic 0: the old system serves, and it was written inline
    assert searched.body["servedBy"] == "old"
    assert [r["noteId"] for r in searched.body["results"]] == [note]
    found(app.serve, user, "garden fence", note)  # the new side, through the queue
    emptied = app.serve.call("POST", "/notes", {"userId": user, "noteId": note, "text": ""})
    assert emptied.status == 202
    again = app.serve.call("POST", "/search", {"text": "garden fence", "userId": user})
    assert again.body["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": "u", "noteId": "n", "text": "x", "created": -1}, "created"),
        ({"userId": "u", "noteId": "n", "text": "x", "created": "yesterday"}, "created"),
        ({"userId": "u", "noteId": {}, "text": "x"}, "noteId"),
        ({"userId": "u", "noteId": "n"}, "text"),
        ({"userId": 7, "noteId": "n", "text": "x"}, "userId"),
    ],
)
def test_notes_bad_bodies(serve: ServeProcess, body: dict[str, Any], field: str) -> None:
    answer = serve.call("POST", "/notes", body)
    assert answer.status == 422, answer
    assert field in [f["field"] for f in answer.body["fields"]]


def test_search_bad_bodies(serve: ServeProcess) -> None:
    answer = serve.call("POST", "/search", {"text": "x", "userId": {"$gt": ""}, "topK": 1000})
    assert answer.status == 422
    assert [f["field"] for f in answer.body["fields"]] == ["userId"]
    too_many = serve.call("POST", "/search", {"text": "x", "userId": "u", "topK": 1000})
    assert too_many.body["fields"] == [
        {"field": "topK", "detail": "at most 100 (service.max_top_k), got 1000"}
    ]


def first_users_below(share: float, count: int = 1) -> list[str]:
    """User ids whose stable bucket puts them on the new system at ``share``."""
    found_ids = (f"probe-{i}" for i in itertools.count())
    return list(itertools.islice((u for u in found_ids if bucket(u) < share), count))


def served_by_within(serve: ServeProcess, user: str, side: str, bound: float) -> float:
    """Seconds until ``/search`` for ``user`` is served by ``side``; fails past ``bound``."""
    started = time.monotonic()
    while True:
        answer = serve.call("POST", "/search", {"text": "anything", "userId": user})
        assert answer.status == 200, answer
        elapsed = time.monotonic() - started
        if answer.body["servedBy"] == side:
            return elapsed
        assert elapsed < bound, f"still served by the other side after {elapsed:.1f}s"
        time.sleep(0.05)


def test_a_traffic_step_and_a_quick_rollback_reach_search_within_state_refresh(
    app: AppServer,
) -> None:
    (user,) = first_users_below(0.2)
    refresh = app.plan.migration.traffic.state_refresh
    # the bound: the router's refresh, plus the time one search may take on a busy machine
    bound = refresh + 4.0
    assert (
        app.serve.call("POST", "/search", {"text": "x", "userId": user}).body["servedBy"] == "old"
    )
    with app.migration() as m:
        set_traffic(m, 0.2, reason="test step")
        assert served_by_within(app.serve, user, "new", bound) < bound
        rollback_quick(m, reason="test rollback")
        assert served_by_within(app.serve, user, "old", bound) < bound
