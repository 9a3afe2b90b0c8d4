"""Worker failures in the log: a warning with its reason at once, then at most one line per
kind per interval (with how many failed that way since), never one line per job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from constellation.worker.events import JobFailure
from constellation.worker.failure_warnings import FailureWarnings
from tests.unit.test_worker import Rig, job

PASSWORD = "pa55-W0RD"


def failure(kind: str, detail: str, dead: bool = False) -> JobFailure:
    return JobFailure(0.0, kind, detail, dead, "m", 1, "u", "n", 1)


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "constellation.worker"]


def test_one_warning_per_kind_per_interval_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    warnings = FailureWarnings(interval=60, clock=lambda: now[0])
    down = f"Chroma server at http://admin:{PASSWORD}@chroma:8000 is unreachable"
    with caplog.at_level(logging.INFO, logger="constellation.worker"):
        for _ in range(20):
            warnings.failed(failure("index_error", down))
        warnings.failed(failure("too_large", "body is 70,000 bytes", dead=True))
        now[0] += 61
        warnings.failed(failure("index_error", down))
    assert lines(caplog) == [
        (
            logging.WARNING,
            "1 job(s) failed (index_error): Chroma server at http://admin:***@chroma:8000 "
            "is unreachable, retried later",
        ),
        (
            logging.WARNING,
            "1 job(s) failed (too_large): body is 70,000 bytes, 1 of them dead-lettered",
        ),
        (
            logging.WARNING,
            "20 job(s) failed in the last 61s (index_error): Chroma server at "
            "http://admin:***@chroma:8000 is unreachable, retried later",
        ),
    ]
    assert PASSWORD not in caplog.text


def test_the_worker_logs_an_outage_at_warning_with_its_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path, visibility=1)
    rig.processor.acks.failures = FailureWarnings(interval=3600)
    rig.send(*(job("u", f"n{i}", f"text {i}") for i in range(5)))
    rig.index.down = True
    with caplog.at_level(logging.INFO, logger="constellation.worker"):
        rig.worker(visibility_timeout=1).run(max_messages=5)
    warned = [text for level, text in lines(caplog) if level == logging.WARNING]
    assert len(warned) == 1, lines(caplog)  # five failures of one kind: one line
    assert (
        warned[0].startswith("1 job(s) failed (index_error): ")
        and "unreachable (test)" in warned[0]
    )
