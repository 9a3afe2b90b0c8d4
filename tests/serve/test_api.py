"""``constellation serve --worker`` over real HTTP: every endpoint with good and bad bodies, the
three token cases and 100 concurrent clients (the migration through ``/notes`` and ``/search``:
``test_api_migration.py``)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.serve.conftest import AppServer
from tests.support.serve import READ_TOKEN, WRITE_TOKEN, ServeProcess, found

pytestmark = [pytest.mark.model]

SEED_JOB = {
    "userId": "test",
    "noteId": "test-note",
    "text": "Test embedding",
    "created": 1650000000000,
    "version": 1,
}


# tokens ------------------------------------------------------------------------------------------
def test_healthz_needs_no_token_and_everything_else_does(serve: ServeProcess) -> None:
    assert serve.call("GET", "/healthz", token=None).body == {"status": "ok"}
    for method, path, body in [
        ("POST", "/embed", SEED_JOB),
        ("POST", "/query", {"text": "x", "userId": "u"}),
        ("POST", "/notes", {"userId": "u", "noteId": "n", "text": "x"}),
        ("POST", "/search", {"text": "x", "userId": "u"}),
        ("GET", "/stats", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
        ("GET", "/no-such-path", None),
    ]:
        missing = serve.call(method, path, body, token=None)
        assert missing.status == 401, (path, missing)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.body["error"] == "unauthorized"
        unknown = serve.call(method, path, body, token="not-a-token-" + "x" * 20)
        assert unknown.status == 401, (path, unknown)
        assert unknown.body == {"error": "unauthorized", "detail": "unknown token"}
        basic = serve.call(method, path, body, token=None, headers={"Authorization": "Basic eA=="})
        assert basic.status == 401


def test_a_read_token_reads_but_may_not_write(serve: ServeProcess) -> None:
    for path, body in [
        ("/embed", SEED_JOB),
        ("/notes", {"userId": "u", "noteId": "n", "text": ""}),
    ]:
        answer = serve.call("POST", path, body, token=READ_TOKEN)
        assert answer.status == 403, answer
        assert answer.body["detail"] == f"token 'dashboards' has scope read; {path} needs write"
    assert (
        serve.call("POST", "/query", {"text": "x", "userId": "u"}, token=READ_TOKEN).status == 200
    )
    assert serve.call("GET", "/stats", token=READ_TOKEN).status == 200
    assert serve.call("GET", "/metrics", token=READ_TOKEN).status == 200


def test_no_token_value_appears_in_the_log(serve: ServeProcess) -> None:
    serve.call("GET", "/stats", token=READ_TOKEN)
    log = serve.tail(10**7)
    assert 'GET /stats" 200' in log and "caller=dashboards" in log
    assert WRITE_TOKEN not in log and READ_TOKEN not in log


# /embed and /query -------------------------------------------------------------------------------
def test_the_seed_body_is_embedded_and_found(serve: ServeProcess) -> None:
    answer = serve.call("POST", "/embed", SEED_JOB)
    assert answer.status == 202, answer
    assert answer.body["accepted"] == 1 and len(answer.body["messageIds"]) == 1
    hit = found(serve, "test", "Test embedding", "test-note").body["results"][0]
    assert hit["version"] == 1 and hit["created"] == SEED_JOB["created"]
    assert hit["score"] > 0.99


def test_a_batch_with_one_bad_job_is_rejected_whole(serve: ServeProcess) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    good = {**SEED_JOB, "userId": user, "noteId": "kept-out", "text": "the good job"}
    jobs: list[Any] = [
        good,
        {**good, "version": 9},
        {**good, "created": True},
        {**good, "userId": " "},
        "not an object",
        {k: v for k, v in good.items() if k != "text"},
    ]
    answer = serve.call("POST", "/embed", {"jobs": jobs})
    assert answer.status == 422, answer
    assert [(r["index"], r["reason"]) for r in answer.body["rejected"]] == [
        (1, "unknown_version"),
        (2, "wrong_type"),
        (3, "empty_id"),
        (4, "not_an_object"),
        (5, "missing_field"),
    ]
    assert answer.body["rejected"][1]["detail"] == "created must be an integer, got a boolean"
    # The good job of that request was not sent: a later one for the same user is stored alone.
    later = {**good, "noteId": "sent-later", "text": "the job sent afterwards"}
    assert serve.call("POST", "/embed", {"jobs": [later]}).status == 202
    hits = found(serve, user, "the job sent afterwards", "sent-later").body["results"]
    assert [h["noteId"] for h in hits] == ["sent-later"]


def test_embed_bodies_that_are_not_jobs(serve: ServeProcess) -> None:
    for raw, reason in [
        (b"{not json", "not_json"),
        (b'{"jobs": {"userId": "u"}}', "wrong_type"),
        (b"[1, 2]", "not_an_object"),
    ]:
        answer = serve.call("POST", "/embed", raw=raw)
        assert answer.status == 422, (raw, answer)
        assert answer.body["rejected"][0]["reason"] == reason
    assert serve.call("POST", "/embed", {"jobs": []}).body == {"accepted": 0, "messageIds": []}


def test_bytes_no_store_takes_are_refused_naming_the_field(serve: ServeProcess) -> None:
    """D5, D6, D10: lone surrogates (JSON's \\ud800 escapes) are a 422 naming the field, a body
    nested 1,000 deep is a 400 on /embed as elsewhere, and `created` must be a time a note was
    edited (epoch ms from 1990 to a day from now): never a 500, nothing sent."""
    user = f"u-{uuid.uuid4().hex[:8]}"
    good = {**SEED_JOB, "userId": user, "noteId": "odd"}
    for change, reason, said in [
        ({"text": "a\ud800b"}, "not_text", "text holds a lone surrogate (U+D800)"),
        ({"userId": "p\udc00"}, "not_text", "userId holds a lone surrogate (U+DC00)"),
        ({"created": 10**30}, "bad_time", "between 1990-01-01 and a day from now"),
        ({"created": -1}, "bad_time", "got -1"),
        ({"created": 1_700_000_000}, "bad_time", "epoch milliseconds"),  # seconds
    ]:
        answer = serve.call("POST", "/embed", {**good, **change})
        assert answer.status == 422, (change, answer)
        (rejected,) = answer.body["rejected"]
        assert rejected["reason"] == reason and said in rejected["detail"], answer.body
    deep = b'{"jobs": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    for path in ("/embed", "/query", "/notes"):
        answer = serve.call("POST", path, raw=deep)
        assert answer.status == 400, (path, answer)
    for body, field in [
        ({"userId": "p\udc00", "noteId": "n", "text": "x"}, "userId"),
        ({"userId": "u", "noteId": "n\ud800", "text": "x"}, "noteId"),
        ({"userId": "u", "noteId": "n", "text": "a\ud800b"}, "text"),
        ({"userId": "u", "noteId": "n", "text": "x", "created": 10**30}, "created"),
        ({"userId": "u", "noteId": "n", "text": "x", "created": 5}, "created"),
    ]:
        answer = serve.call("POST", "/notes", body)
        assert answer.status == 422, (body, answer)
        assert [f["field"] for f in answer.body["fields"]] == [field], answer.body
    for path in ("/query", "/search"):
        answer = serve.call("POST", path, {"text": "a\ud800b", "userId": "u"})
        assert answer.status == 422, (path, answer)
        assert [f["field"] for f in answer.body["fields"]] == ["text"], answer.body


QUERY = {"text": "how do loops work", "userId": "user-01"}


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"userId": {"$ne": "nobody"}}, "userId", "must be a string, got an object"),
        ({"userId": ["user-01", "user-02"]}, "userId", "must be a string, got an array"),
        ({"userId": ""}, "userId", "String should have at least 1 character"),
        ({"userId": "   "}, "userId", "must be a non-empty string"),
        ({"userId": None}, "userId", "must be a string, got null"),
        ({"text": 5}, "text", "must be a string, got an integer"),
        ({"topK": "10"}, "topK", "must be an integer, got a string"),
        ({"topK": True}, "topK", "must be an integer, got a boolean"),
        ({"topK": 0}, "topK", "Input should be greater than or equal to 1"),
        ({"topK": 101}, "topK", "at most 100 (service.max_top_k), got 101"),
        ({"version": 7}, "version", "version 7 is not declared (plan has 1, 2)"),
        ({"versions": [1, 7]}, "versions", "version 7 is not declared (plan has 1, 2)"),
        ({"version": 1, "versions": [1]}, "versions", "give version or versions, not both"),
        ({"userid": "user-01"}, "userid", "unknown field"),
    ],
)
def test_query_bad_bodies_are_422_naming_the_field(
    serve: ServeProcess, change: dict[str, Any], field: str, detail: str
) -> None:
    answer = serve.call("POST", "/query", {**QUERY, **change})
    assert answer.status == 422, answer
    assert {"field": field, "detail": detail} in answer.body["fields"], answer.body
    assert answer.body["error"] == "invalid_body"


def test_bodies_that_are_not_objects(serve: ServeProcess) -> None:
    for path in ("/query", "/search", "/notes"):
        broken = serve.call("POST", path, raw=b'{"text": ')
        assert broken.status == 422
        assert broken.body["fields"] == [{"field": "body", "detail": "the body is not valid JSON"}]
        array = serve.call("POST", path, raw=b"[]")
        assert array.status == 422 and array.body["fields"][0]["field"] == "body"
        missing = serve.call("POST", path, {})
        assert missing.status == 422
        assert {"field": "userId", "detail": "required"} in missing.body["fields"]


def test_query_reads_the_state_versions_or_the_given_ones(app: AppServer) -> None:
    note = app.notes[0]
    text = " ".join(note.content.split()[:12])
    default = app.serve.call("POST", "/query", {"text": text, "userId": note.user_id})
    assert default.status == 200
    assert default.body["results"][0]["noteId"] == note.id
    assert all(app.owner[r["noteId"]] == note.user_id for r in default.body["results"])
    assert {r["version"] for r in default.body["results"]} == {1}
    pinned = app.serve.call(
        "POST", "/query", {"text": text, "userId": note.user_id, "version": 1, "topK": 2}
    )
    assert [r["noteId"] for r in pinned.body["results"]] == [
        r["noteId"] for r in default.body["results"][:2]
    ]
    merged = app.serve.call(
        "POST", "/query", {"text": text, "userId": note.user_id, "versions": [1]}
    )
    assert merged.body["results"][0]["noteId"] == note.id
    stranger = app.serve.call("POST", "/query", {"text": text, "userId": "nobody-at-all"})
    assert stranger.body == {"results": []}


# /stats, /readyz, /metrics, docs -------------------------------------------------------------
def test_stats_are_the_figures_of_stats_json(app: AppServer, invoke: Any) -> None:
    import json

    answer = app.serve.call("GET", "/stats", token=READ_TOKEN)
    assert answer.status == 200
    cli = invoke("--plan", str(app.plan_path), "stats", "--json")
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)
    assert answer.body.keys() == expected.keys()
    # points in time one way in both: ISO 8601
    assert datetime.fromisoformat(answer.body["at"]) <= datetime.fromisoformat(expected["at"])
    assert answer.body["queue"]["name"] == expected["queue"]["name"] == app.plan.queue.name
    assert answer.body["index_size"]["1"] >= len(app.notes)
    assert answer.body["jobs"]["processed"] >= 1
    # one time format in JSON, over HTTP as on the command line: ISO 8601 with its zone
    scope = answer.body["scope"]
    for when in (
        answer.body["at"],
        expected["at"],
        scope["since"],
        scope["deployment"]["queue_created"],
    ):
        assert isinstance(when, str) and datetime.fromisoformat(when).utcoffset() is not None, when


def test_readyz_names_every_system(serve: ServeProcess) -> None:
    answer = serve.call("GET", "/readyz", token=READ_TOKEN)
    assert answer.status == 200, answer
    assert answer.body["ready"] is True and answer.body["failing"] == []
    assert [c["name"] for c in answer.body["checks"]] == [
        "index",
        "model",
        "queue",
        "requests in flight",
        "state store",
        "worker",
    ]


def test_metrics_count_requests_and_carry_the_workers(serve: ServeProcess) -> None:
    serve.call("POST", "/query", {"text": "x", "userId": "u"})
    serve.call("POST", "/query", {"text": "x", "userId": {}})
    text = serve.call("GET", "/metrics", token=READ_TOKEN).body
    assert 'constellation_http_requests_total{endpoint="/query",method="POST",status="200"}' in text
    assert 'constellation_http_requests_total{endpoint="/query",method="POST",status="422"}' in text
    assert "constellation_http_request_duration_seconds_bucket{" in text
    assert "constellation_jobs_processed_total" in text  # the in-process worker's


def test_openapi_and_docs(serve: ServeProcess) -> None:
    spec = serve.call("GET", "/openapi.json", token=READ_TOKEN)
    assert spec.status == 200
    paths = spec.body["paths"]
    assert {"/embed", "/query", "/notes", "/search", "/stats", "/healthz", "/readyz"} <= set(paths)
    assert spec.body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert paths["/healthz"]["get"]["security"] == []
    assert "oneOf" in str(paths["/embed"]["post"]["requestBody"])
    docs = serve.call("GET", "/docs", token=READ_TOKEN)
    assert docs.status == 200 and "swagger" in str(docs.body).lower()


# load --------------------------------------------------------------------------------------------
def test_100_concurrent_clients_get_answers_and_only_their_own_notes(app: AppServer) -> None:
    owner = app.owner
    users = app.users
    phrases = {
        u: [(n.id, " ".join(n.content.split()[:12])) for n in app.notes if n.user_id == u]
        for u in users
    }
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    with httpx.Client(base_url=app.serve.url, limits=limits, timeout=120, headers=headers) as http:

        def client(i: int) -> list[str]:
            user = users[i % len(users)]
            problems = []
            for path in ("/query", "/search"):
                note, text = phrases[user][i % len(phrases[user])]
                response = http.post(path, json={"text": text, "userId": user, "topK": 5})
                if response.status_code != 200:
                    problems.append(f"{path} {response.status_code} {response.text}")
                    continue
                hits = [hit["noteId"] for hit in response.json()["results"]]
                # Each search is for a note's own words: that note is among the answers (an
                # empty answer is a failure, not a pass), and every answer is the user's.
                if note not in hits:
                    problems.append(f"{path}: {user}'s {note} not among {hits}")
                problems += [f"{path}: {h} is not {user}'s" for h in hits if owner.get(h) != user]
            return problems

        with ThreadPoolExecutor(100) as pool:
            problems = [p for found_ in pool.map(client, range(100)) for p in found_]
    assert problems == []
