"""The service commands through the real CLI app (`enqueue`, `worker run`, `query`, `verify`)
and the app-side Python client, on a copy of plans/local.yaml in an empty folder.

The model is the real one, loaded once per session and handed to every command's adapters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import constellation
from constellation.client import JobRejected
from constellation.jobs import Job
from constellation.plan import load_plan
from constellation.producer import Rejected
from tests.support.cli import Invoke

pytestmark = [pytest.mark.model, pytest.mark.usefixtures("shared_model")]

CREATED = 1_700_000_000_000


@pytest.fixture
def plan(invoke: Invoke, local_plan: Path) -> Path:
    """plans/local.yaml in an empty folder, provisioned."""
    result = invoke("--plan", str(local_plan), "provision")
    assert result.exit_code == 0, result.output
    return local_plan


def jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a Rich table, cell by cell."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def note(user: str, note_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "noteId": note_id,
        "text": text,
        "created": CREATED,
        "version": 1,
    } | extra


def test_enqueue_reports_rejected_lines_and_the_worker_counts_what_it_did(
    invoke: Invoke, plan: Path
) -> None:
    one = invoke(
        "--plan", str(plan), "enqueue", "--user", "u1", "--note", "n1", "--text", "buy milk"
    )
    assert (one.exit_code, one.stdout, one.stderr) == (0, "sent 1 job(s) to embed-queue\n", "")

    notes = jsonl(
        plan.parent / "notes.jsonl",
        [
            note("u1", "n2", "walk the dog in the park"),
            "not json",
            note("u2", "n1", "quarterly tax return documents"),
            "",
            note("u1", "x", "t", created="yesterday"),
            note("u1", "y", "t", version=99),
            note("u1", "n3", "  \t "),  # valid: an emptied note
            {"noteId": "z", "text": "t", "created": 1, "version": 1},
        ],
    )
    declared = ", ".join(str(v) for v in sorted(load_plan(plan).models))
    rejected = [
        ["2", "not_json", "Expecting value at column 1"],
        ["5", "wrong_type", "created must be an integer, got a string"],
        ["6", "unknown_version", f"version 99 is not declared (plan has {declared})"],
        ["8", "missing_field", "missing userId"],
    ]
    human = invoke("--plan", str(plan), "enqueue", "--file", str(notes))
    assert human.exit_code == 1
    assert human.stdout.splitlines()[0] == "sent 3 job(s) to embed-queue"
    assert "4 rejected (not sent)" in human.stdout
    assert table_rows(human.stdout) == rejected

    machine = invoke("--plan", str(plan), "enqueue", "--file", str(notes), "--json")
    assert machine.exit_code == 1
    assert json.loads(machine.stdout) == {
        "sent": 3,
        "message_ids": [],
        "rejected": [{"line": int(n), "reason": r, "detail": d} for n, r, d in rejected],
    }

    # 7 messages: n1, then the file's three jobs twice. Duplicates and unchanged notes are
    # skipped, the emptied note stores nothing.
    worker = invoke("--plan", str(plan), "worker", "run", "--drain", "--json")
    assert worker.exit_code == 0, worker.output
    summary = json.loads(worker.stdout)
    assert summary["stats"].pop("rate") > 0
    assert summary == {
        "received": 7,
        "batches": 1,
        "reason": "drained",
        "stats": {
            "processed": 3,
            "skipped": 3,
            "empty": 1,
            "truncated": 0,
            "batches": 1,
            "failed": {},
            "dead_lettered": {},
            "deferred": 0,
        },
    }
    again = invoke("--plan", str(plan), "worker", "run", "--drain", "--json")
    assert json.loads(again.stdout)["received"] == 0


def test_query_returns_only_that_users_notes_best_first(invoke: Invoke, plan: Path) -> None:
    notes = jsonl(
        plan.parent / "notes.jsonl",
        [
            note("u1", "groceries", "Buy milk, eggs and butter at the supermarket"),
            note("u1", "dentist", "Dentist appointment on Tuesday at 10am"),
            note("u1", "trip", "Book train tickets for the trip to Lyon"),
            note("u2", "dairy", "Buy milk and cheese for the supermarket run"),
            note("u2", "gym", "Leg day at the gym"),
        ],
    )
    assert invoke("--plan", str(plan), "enqueue", "--file", str(notes)).exit_code == 0
    assert invoke("--plan", str(plan), "worker", "run", "--drain").exit_code == 0

    result = invoke(
        "--plan", str(plan), "query", "milk from the supermarket", "--user", "u1", "--json"
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found[0]["note_id"] == "groceries"
    assert sorted(r["note_id"] for r in found) == ["dentist", "groceries", "trip"]
    assert [r["score"] for r in found] == sorted((r["score"] for r in found), reverse=True)
    # times in JSON are ISO 8601 (the job's epoch milliseconds, in UTC)
    created = datetime.fromtimestamp(CREATED / 1000, tz=UTC).isoformat()
    assert {(r["created"], r["version"]) for r in found} == {(created, 1)}

    top = invoke(
        "--plan", str(plan), "query", "milk from the supermarket", "--user", "u2", "--top-k", "1"
    )
    assert top.exit_code == 0, top.output
    assert top.stdout.splitlines()[0].strip() == "1 result(s) for user u2"
    assert [row[0] for row in table_rows(top.stdout)] == ["dairy"]

    nobody = invoke("--plan", str(plan), "query", "milk", "--user", "u3", "--json")
    assert json.loads(nobody.stdout) == []


def test_verify_inline_passes_on_the_local_plan_in_an_empty_folder(
    invoke: Invoke, local_plan: Path
) -> None:
    assert sorted(p.name for p in local_plan.parent.iterdir()) == ["local.yaml"]

    # stand-alone on the embedded default, --inline creates what is missing first
    result = invoke("--plan", str(local_plan), "verify", "--inline", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert [(c["name"], c["passed"]) for c in report["checks"]] == [
        ("plan is valid", True),
        ("embedded resources", True),
        ("queues reachable", True),
        ("redrive policy", True),
        ("index dimension and metric", True),
        ("index answers a sample query per version", True),
        ("model loads", True),
        ("old system layout", True),
        ("test job enqueued", True),
        ("stored by the worker", True),
        ("found by a query", True),
        ("test record removed", True),
    ]
    # The round trip leaves nothing behind: no record, no message.
    described = json.loads(invoke("--plan", str(local_plan), "describe", "--json").stdout)
    assert [i["info"]["count"] for i in described["indexes"]] == [0]
    assert {q["name"]: q["info"]["depth"] for q in described["queues"]} == {
        "embed-queue": {"visible": 0, "in_flight": 0},
        "embed-dead-letter": {"visible": 0, "in_flight": 0},
    }


def test_python_client_enqueues_and_queries(invoke: Invoke, plan: Path) -> None:
    client_from_plan: Callable[..., Any] = constellation.Client.from_plan
    with client_from_plan(plan) as client:
        first = client.enqueue(note("ana", "n1", "Pay the electricity bill before Friday"))
        assert isinstance(first, str) and first
        client.enqueue(Job("ana", "n2", "Ideas for the garden: tomatoes and basil", CREATED, 1))
        with pytest.raises(JobRejected, match="unknown_version"):
            client.enqueue(note("ana", "n3", "x", version=99))
        report = client.enqueue_many(
            [
                note("ben", "n1", "Pay the water bill"),
                {"userId": "ben", "noteId": "n2"},
                note("ana", "n4", "Renew the passport next month"),
            ]
        )
        assert (report.sent, len(report.message_ids)) == (2, 2)
        assert report.rejected == [Rejected(2, "missing_field", "missing text, created, version")]

        worker = invoke("--plan", str(plan), "worker", "run", "--drain", "--json")
        assert json.loads(worker.stdout)["stats"]["processed"] == 4

        hits = client.query("bills to pay", user_id="ana", top_k=2)
        assert hits[0].note_id == "n1"
        assert len(hits) == 2
        assert {h.note_id for h in client.query("bills to pay", user_id="ana")} == {
            "n1",
            "n2",
            "n4",
        }
        assert [h.note_id for h in client.query("bills", user_id="ben")] == ["n1"]


def test_enqueue_refuses_what_the_worker_would_dead_letter_and_reads_past_a_bad_byte(
    invoke: Invoke, plan: Path
) -> None:
    limit = load_plan(plan).consumer.max_job_bytes
    big = note("u1", "big", "word " * (limit // 5 + 10))
    size = len(Job("u1", "big", big["text"], CREATED, 1).to_body().encode())  # the body sent
    notes = plan.parent / "notes.jsonl"
    notes.write_bytes(
        json.dumps(note("u1", "n1", "walk the dog")).encode()
        + b"\n"
        + b'{"userId": "u1", "noteId": "bad", "text": "caf\xe9", "created": 1, "version": 1}\n'
        + json.dumps(big).encode()
        + b"\n"
        + json.dumps(note("u1", "n2", "quarterly tax return")).encode()
        + b"\n"
        # D5, D6, D10: a lone surrogate, nesting 1,000 deep, a time in seconds
        + json.dumps(note("u1", "n3", "a\ud800b")).encode()
        + b"\n"
        + b"[" * 1000
        + b"]" * 1000
        + b"\n"
        + json.dumps({**note("u1", "n5", "x"), "created": 1_700_000_000}).encode()
        + b"\n"
        + json.dumps(note("u1", "n6", "the last line, still sent")).encode()
        + b"\n"
    )
    sent = invoke("--plan", str(plan), "enqueue", "--file", str(notes), "--json")
    assert sent.exit_code == 1, sent.output
    report = json.loads(sent.stdout)
    assert report["sent"] == 3  # the lines before, between and after the bad ones
    (utf8, large, surrogate, deep, seconds) = report["rejected"]
    assert (surrogate["line"], surrogate["reason"]) == (5, "not_text")
    assert "text holds a lone surrogate (U+D800)" in surrogate["detail"]
    assert (deep["line"], deep["reason"]) == (6, "not_json")
    assert (seconds["line"], seconds["reason"]) == (7, "bad_time")
    assert (utf8["line"], utf8["reason"]) == (2, "not_utf8")
    assert utf8["detail"] == "not valid UTF-8 (byte 0xe9 at column 47)"
    assert (large["line"], large["reason"]) == (3, "too_large")
    assert large["detail"] == (
        f"body is {size:,} bytes, the limit is {limit:,} (consumer.max_job_bytes)"
    )

    one = invoke(
        "--plan", str(plan), "enqueue", "--user", "u1", "--note", "big", "--text", big["text"]
    )
    assert one.exit_code == 1 and "too_large" in one.stdout
    with (
        constellation.Client.from_plan(plan) as client,
        pytest.raises(JobRejected, match="too_large"),
    ):
        client.enqueue(big)

    # what was sent, the worker stores: nothing reaches the dead-letter queue
    worker = invoke("--plan", str(plan), "worker", "run", "--drain", "--json")
    stats = json.loads(worker.stdout)["stats"]
    assert (stats["processed"], stats["dead_lettered"]) == (3, {}), stats
