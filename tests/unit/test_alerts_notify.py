"""Notifications of alert changes: a webhook receives JSON; failures are logged, not raised."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.monitoring.alerts import AlertChange
from constellation.monitoring.notify import Notifier
from constellation.plan import DEFAULT_ALERTS
from tests.support.http import local_server
from tests.support.servers import free_port

DEAD = DEFAULT_ALERTS[-1]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Warnings of the monitoring logger, even after a CLI test stopped its propagation."""
    logger = logging.getLogger("constellation.monitoring")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


CHANGE = AlertChange(DEAD, "ok", "firing", 5.0, 1_700_000_000.0)


def test_the_webhook_receives_a_slack_compatible_json_body() -> None:
    with local_server(lambda request: (200, {"ok": True})) as server:
        notifier = Notifier(
            webhook_url=server.url + "/hooks/alerts", plan_name="notes", environment="test"
        )
        (delivery,) = notifier.notify(CHANGE)
    assert delivery.ok and delivery.channel == "webhook"
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/hooks/alerts")
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["text"].startswith("[FIRING] EmbedDeadLetters (critical) on notes/test:")
    assert "dead_letter_depth = 5" in body["text"]
    assert {k: body[k] for k in ("alert", "state", "previous", "severity", "value")} == {
        "alert": "EmbedDeadLetters",
        "state": "firing",
        "previous": "ok",
        "severity": "critical",
        "value": 5.0,
    }
    assert body["at"] == "2023-11-14T22:13:20+00:00"


def test_a_resolved_alert_says_so() -> None:
    with local_server(lambda request: (204, {})) as server:
        Notifier(webhook_url=server.url).notify(AlertChange(DEAD, "firing", "ok", 0.0, 1.0))
    body = server.requests[0].json()
    assert body["resolved"] is True and body["text"].startswith("[RESOLVED] EmbedDeadLetters")


@pytest.mark.parametrize("failure", ["refused", "http-500"])
def test_a_failing_webhook_is_logged_not_raised(
    failure: str, logged: pytest.LogCaptureFixture
) -> None:
    if failure == "refused":
        url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        (delivery,) = Notifier(webhook_url=url, timeout=2).notify(CHANGE)
    else:
        with local_server(lambda request: (500, {"error": "down"})) as server:
            (delivery,) = Notifier(webhook_url=server.url).notify(CHANGE)
        assert "HTTP 500" in delivery.detail
    assert not delivery.ok
    assert "webhook notification for EmbedDeadLetters failed" in logged.text


def test_the_change_command_gets_the_alert_in_its_environment(tmp_path: Path) -> None:
    dump = tmp_path / "env.json"
    script = (
        "import json, os, sys; "
        "json.dump({k: v for k, v in os.environ.items() if k.startswith('CONSTELLATION_')}, "
        f"open({str(dump)!r}, 'w'))"
    )
    command = f"{sys.executable} -c {json.dumps(script)}"
    (delivery,) = Notifier(command=command, plan_name="notes", environment="test").notify(CHANGE)
    assert delivery.ok, delivery.detail
    env = json.loads(dump.read_text())
    assert env["CONSTELLATION_ALERT"] == "EmbedDeadLetters"
    assert env["CONSTELLATION_ALERT_STATE"] == "firing"
    assert env["CONSTELLATION_ALERT_PREVIOUS"] == "ok"
    assert env["CONSTELLATION_ALERT_VALUE"] == "5.0"
    assert env["CONSTELLATION_ALERT_RESOLVED"] == "0"
    assert env["CONSTELLATION_PLAN_NAME"] == "notes"


def test_a_failing_command_is_logged_not_raised(logged: pytest.LogCaptureFixture) -> None:
    (delivery,) = Notifier(command="echo boom >&2; exit 3").notify(CHANGE)
    assert not delivery.ok and delivery.detail == "exit status 3: boom"
    assert "command notification for EmbedDeadLetters failed" in logged.text
