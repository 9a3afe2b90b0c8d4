"""What a provider's answers mean: headers, status codes and bodies (httpx's mock transport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import numpy as np
import pytest

from constellation.embedders.provider.headers import rate_headers, retry_after, span_seconds
from constellation.embedders.provider.wire import (
    Answer,
    Failed,
    InputRefused,
    RateLimited,
    Refused,
    Transient,
    Wire,
    endpoint,
)
from constellation.plan import ProviderConfig


def test_spans_as_providers_write_them() -> None:
    assert span_seconds("1s") == 1.0
    assert span_seconds("6m0s") == 360.0
    assert span_seconds("20ms") == pytest.approx(0.02)
    assert span_seconds("1h2m3.5s") == pytest.approx(3723.5)
    assert span_seconds("2.5") == 2.5
    assert span_seconds("soon") is None
    assert span_seconds("1x") is None


def test_retry_after_in_seconds_as_a_date_or_in_milliseconds() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": date}, now=lambda: now.timestamp()) == pytest.approx(30)
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "garbage"}) is None
    assert retry_after({}) is None


def test_rate_limit_headers_and_their_headroom() -> None:
    limits = rate_headers(
        httpx.Headers(
            {
                "X-RateLimit-Limit-Requests": "60",
                "x-ratelimit-remaining-requests": "58",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-limit-tokens": "10000",
                "x-ratelimit-remaining-tokens": "9800",
                "x-ratelimit-reset-tokens": "6m0s",
            }
        )
    )
    assert (limits.limit_requests, limits.remaining_requests, limits.reset_requests) == (
        60,
        58,
        1.0,
    )
    assert limits.reset_tokens == 360.0
    assert limits.headroom() == "58 of 60 requests, 9,800 of 10,000 tokens left"
    assert not rate_headers({}).sent


def test_endpoint_keeps_a_query_string_after_the_path() -> None:
    assert endpoint("http://h:7997") == "http://h:7997/embeddings"
    assert endpoint("https://api.openai.com/v1/") == "https://api.openai.com/v1/embeddings"
    assert (
        endpoint("https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21")
        == "https://r.openai.azure.com/openai/deployments/d/embeddings?api-version=2024-10-21"
    )


def _wire(handler: object, **config: object) -> Wire:
    settings = ProviderConfig(url="http://provider.test/v1", api_key="sk-SECRET-1234", **config)
    return Wire(
        settings,
        model="m",
        dimensions=3,
        connections=2,
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
    )


def _embeddings(texts: list[str], *, reverse: bool = False) -> dict[str, object]:
    rows = [{"index": i, "embedding": [float(i), 1.0, 2.0]} for i in range(len(texts))]
    return {"data": rows[::-1] if reverse else rows, "usage": {"prompt_tokens": 7}}


def test_a_request_carries_model_input_and_key_and_rows_come_back_in_order() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(200, json=_embeddings(body["input"], reverse=True))

    answer = _wire(handler).post(["a", "b"])
    assert isinstance(answer, Answer)
    assert seen[0].url == "http://provider.test/v1/embeddings"
    assert seen[0].headers["authorization"] == "Bearer sk-SECRET-1234"
    assert json.loads(seen[0].content) == {"model": "m", "input": ["a", "b"]}
    assert answer.vectors[:, 0].tolist() == [0.0, 1.0]  # sorted by index
    assert answer.tokens == 7


def test_azure_style_key_header_without_a_scheme_and_base64_vectors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["api-key"] == "sk-SECRET-1234"
        assert "authorization" not in request.headers
        body = json.loads(request.content)
        assert body["encoding_format"] == "base64" and body["dimensions"] == 3
        raw = np.array([1.5, -2.0, 0.25], dtype="<f4").tobytes()
        import base64

        return httpx.Response(
            200, json={"data": [{"index": 0, "embedding": base64.b64encode(raw).decode()}]}
        )

    wire = _wire(
        handler, auth_header="api-key", auth_scheme="", encoding="base64", send_dimensions=True
    )
    answer = wire.post(["a"])
    assert isinstance(answer, Answer) and answer.vectors.tolist() == [[1.5, -2.0, 0.25]]


@pytest.mark.parametrize(
    ("status", "headers", "kind"),
    [
        (429, {"retry-after": "3"}, RateLimited),
        (503, {}, Transient),
        (500, {}, Transient),
        (400, {}, InputRefused),
        (413, {}, InputRefused),
        (422, {}, InputRefused),
        (401, {}, Refused),
        (403, {}, Refused),
        (404, {}, Refused),
    ],
)
def test_each_status_means_what_it_says(
    status: int, headers: dict[str, str], kind: type[Failed]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers=headers, json={"error": {"message": "because sk-SECRET-1234"}}
        )

    outcome = _wire(handler).post(["a"])
    assert type(outcome) is kind
    assert isinstance(outcome, Failed)
    assert "because" in outcome.reason and "SECRET" not in outcome.reason  # masked
    if isinstance(outcome, RateLimited):
        assert outcome.wait == 3.0
    if isinstance(outcome, Refused):
        assert outcome.key == (status in (401, 403))


def test_garbled_or_short_answers_and_timeouts_are_transient() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>")

    def short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1, 2, 3]}]})

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    outcomes = [_wire(h).post(["a", "b"]) for h in (garbled, short, slow, refused)]
    assert all(isinstance(o, Transient) for o in outcomes)
    reasons = [o.reason for o in outcomes if isinstance(o, Transient)]
    assert "not embeddings" in reasons[0]
    assert "1 vectors for 2 texts" in reasons[1]
    assert "within 30s" in reasons[2] and outcomes[2].timeout  # type: ignore[union-attr]
    assert "out of reach" in reasons[3]
