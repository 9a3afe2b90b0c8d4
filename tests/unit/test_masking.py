"""Secrets in URLs are masked wherever we print, log or store them: one function
(:func:`constellation.masking.masked`) behind error messages, log lines and the failure table."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from cli import logs
from constellation.errors import ConstellationError, SourceError
from constellation.ledger.failures import FailureLog
from constellation.masking import location, masked
from constellation.worker.events import JobFailure

PASSWORD = "pa55-W0RD"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"postgresql://app:{PASSWORD}@db:5432/notes", "postgresql://app:***@db:5432/notes"),
        (f"http://admin:{PASSWORD}@chroma:8000/api", "http://admin:***@chroma:8000/api"),
        (
            f"cannot query Prometheus at https://prom:{PASSWORD}@p:9090: refused",
            "cannot query Prometheus at https://prom:***@p:9090: refused",
        ),
        (f"http://hooks/x?a=1&token={PASSWORD}&b=2", "http://hooks/x?a=1&token=***&b=2"),
        (f"https://h/?api_key={PASSWORD}", "https://h/?api_key=***"),
        ("http://chroma:8000 and sqlite:///data/state.db", None),  # nothing secret: unchanged
        ("user@example.com wrote 3 notes", None),
    ],
)
def test_urls_are_masked_and_other_text_is_not(text: str, shown: str | None) -> None:
    assert masked(text) == (text if shown is None else shown)
    assert PASSWORD not in masked(text)


def test_known_secrets_are_masked_anywhere() -> None:
    assert masked(f"token {PASSWORD} refused", (PASSWORD,)) == "token *** refused"
    assert location(f"http://a:{PASSWORD}@h:1/") == "http://a:***@h:1"


def test_an_error_message_never_holds_a_password() -> None:
    error = SourceError(
        f"reading notes failed: could not connect to postgresql://app:{PASSWORD}@db/notes",
        f"check source.url (postgresql://app:{PASSWORD}@db/notes)",
    )
    assert PASSWORD not in str(error) and PASSWORD not in error.hint
    assert isinstance(error, ConstellationError) and "app:***@db" in error.message


def test_the_failure_table_stores_no_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    log = FailureLog(url, "notes", "local")
    detail = f"Chroma server at http://admin:{PASSWORD}@chroma:8000 is unreachable"
    log.failed(JobFailure(1.0, "index_error", detail, False, "m1", 1, "u", "n", 1))
    (stored,) = log.since(0.0)
    log.close()
    assert PASSWORD not in stored.detail
    assert stored.detail == "Chroma server at http://admin:***@chroma:8000 is unreachable"
    assert PASSWORD.encode() not in (tmp_path / "state.db").read_bytes()


@pytest.mark.parametrize("json_lines", [False, True])
def test_log_lines_never_hold_a_password(json_lines: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger("constellation")
    # configure() changes the handler list in place: the test works on a copy of it
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(root, "propagate", root.propagate)
    logs.configure(json_lines=json_lines)
    logger = logging.getLogger("constellation.test")
    handler = logging.getLogger("constellation").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    logger.warning("cannot reach %s", f"http://prom:{PASSWORD}@p:9090")
    line = stream.getvalue()
    assert "cannot reach http://prom:***@p:9090" in line
    assert f"prom:{PASSWORD}" not in line
    if json_lines:
        assert json.loads(line)["message"] == "cannot reach http://prom:***@p:9090"


def test_the_journal_stores_no_password(tmp_path: Path) -> None:
    from constellation.ledger.state import StateStore

    url = f"sqlite:///{tmp_path / 'state.db'}"
    state = StateStore(url, "notes", "local")
    state.change("rollback quick", f"prom at http://ops:{PASSWORD}@prom:9090 is red", phase=1)
    (entry,) = state.journal()
    state.close()
    assert entry.reason == "prom at http://ops:***@prom:9090 is red"
    assert PASSWORD.encode() not in (tmp_path / "state.db").read_bytes()
