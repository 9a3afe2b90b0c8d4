"""The service's own logic without a server: tokens, loopback, field errors, bind refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.api.auth import Tokens, check_bind, is_loopback
from constellation.api.errors import field_errors
from constellation.api.schemas import QueryBody
from constellation.errors import ConstellationError
from constellation.plan import Plan

WRITE, READ = "w" * 16 + "-write", "r" * 16 + "-read"


def plan_with(*tokens: dict[str, object]) -> Plan:
    return Plan.model_validate(
        {"service": {"tokens": list(tokens)}}, context={"base_dir": Path(".")}
    )


def test_tokens_match_by_value_and_scope() -> None:
    tokens = Tokens(
        plan_with(
            {"name": "app", "token": WRITE, "scope": "write"},
            {"name": "dash", "token": READ},
            {"name": "unset", "token": ""},
        )
    )
    assert not tokens.open
    writer, reader = tokens.match(WRITE), tokens.match(READ)
    assert writer is not None and (writer.name, writer.scope) == ("app", "write")
    caller = reader
    assert caller is not None and (caller.name, caller.scope) == ("dash", "read")
    assert tokens.match(WRITE[:-1]) is None
    assert tokens.match("") is None


def test_a_plan_whose_tokens_have_no_value_is_open_and_loopback_only() -> None:
    plan = plan_with({"name": "app", "token": "", "scope": "write"})
    assert Tokens(plan).open
    check_bind(plan, "127.0.0.1")
    check_bind(plan, "::1")
    with pytest.raises(ConstellationError, match=r"refusing to serve on 0\.0\.0\.0"):
        check_bind(plan, "0.0.0.0")
    check_bind(plan_with({"name": "app", "token": WRITE, "scope": "write"}), "0.0.0.0")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_field_errors_name_each_field_and_the_type_given() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        QueryBody.model_validate({"userId": {"$ne": 1}, "topK": False, "extra": 1})
    assert field_errors(caught.value.errors()) == [
        {"field": "text", "detail": "required"},
        {"field": "userId", "detail": "must be a string, got an object"},
        {"field": "topK", "detail": "must be an integer, got a boolean"},
        {"field": "extra", "detail": "unknown field"},
    ]


def test_a_body_that_stops_arriving_is_a_408_and_reaches_no_route() -> None:
    """D3: the body is read within service.body_timeout, before the request takes a slot."""
    import asyncio

    from constellation.api.limits import InFlightLimit, JsonBody, Load

    reached: list[str] = []
    sent: list[dict[str, object]] = []
    load = Load(limit=1)

    async def route(scope: object, receive: object, send: object) -> None:
        reached.append("route")

    async def stalled() -> dict[str, object]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    app = JsonBody(InFlightLimit(route, load, retry_after=1), limit=4096, timeout=0.05)
    scope = {"type": "http", "method": "POST", "path": "/query", "headers": []}

    async def run() -> None:
        await app(scope, stalled, send)  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(run(), 10))
    assert reached == [] and load.in_flight == 0
    assert sent[0]["status"] == 408
    assert b"service.body_timeout" in sent[1]["body"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("client", "status"),
    [("127.0.0.1", 200), ("::1", 200), ("192.0.2.10", 401), ("2001:db8::5", 401), (None, 401)],
)
def test_open_mode_answers_loopback_clients_only(client: str | None, status: int) -> None:
    """No token configured (open mode): a client that is not on loopback (behind another ASGI
    server bound wider, a proxy) is refused 401 before any route runs; no token helps it."""
    import asyncio

    from constellation.api.auth import BearerAuth

    reached: list[str] = []
    sent: list[dict[str, object]] = []

    async def route(scope: object, receive: object, send: object) -> None:
        reached.append("route")
        await send_ok(send)

    async def send_ok(send: object) -> None:
        sent.append({"type": "http.response.start", "status": 200})

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    app = BearerAuth(route, Tokens(plan_with({"name": "app", "token": "", "scope": "write"})))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/query",
        "headers": [(b"authorization", b"Bearer " + WRITE.encode())],
        "client": None if client is None else (client, 40000),
    }
    asyncio.run(app(scope, lambda: None, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == status
    assert reached == (["route"] if status == 200 else [])
    if status == 401:
        assert b"loopback clients only" in sent[1]["body"]  # type: ignore[operator]


def test_without_the_migration_verbs_the_console_s_migration_answers_501(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from constellation.api import create_app

    plan = Plan.model_validate(
        {"data_dir": str(tmp_path), "service": {"tokens": [{"name": "dash", "token": READ}]}},
        context={"base_dir": tmp_path},
    )
    client = TestClient(create_app(plan))  # as `uvicorn --factory ...app_from_env` builds it
    auth = {"Authorization": f"Bearer {READ}"}
    for path in ("/migration", "/models"):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 501, answer.text
        assert "start it with `constellation serve`" in answer.json()["detail"]
    page = client.get("/")  # the page itself needs no token
    assert page.status_code == 200 and "<title>Constellation console</title>" in page.text
