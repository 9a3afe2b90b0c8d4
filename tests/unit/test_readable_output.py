"""Output a person and a script can read (issue 23): one time format in JSON (ISO 8601 with
its zone) for marked fields and for the ``at``/``*_at`` keys of free-form records, and
``doctor``'s figures and evidence as lines, never raw JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cli.doctor import readable
from constellation.jsondata import jsonable
from constellation.timefields import EPOCH_MS, EPOCH_SECONDS

T = 1_796_416_740.3


@dataclass
class _Result:
    at: float = field(metadata=EPOCH_SECONDS)
    created: int = field(metadata=EPOCH_MS)
    notes: dict[str, object] = field(default_factory=dict)


def _zoned(text: object) -> bool:
    return isinstance(text, str) and datetime.fromisoformat(text).utcoffset() is not None


def test_points_in_time_are_iso_8601_with_a_zone_in_json() -> None:
    data = jsonable(
        _Result(
            T,
            int(T * 1000),
            {"at": T, "step_started_at": T, "checked": 3, "flag_at": True, "nested": {"at": T}},
        )
    )
    assert _zoned(data["at"]) and _zoned(data["created"])
    assert data["at"].startswith("2026-12-04T") and data["at"] == data["created"]
    notes = data["notes"]
    assert (
        _zoned(notes["at"]) and _zoned(notes["step_started_at"]) and _zoned(notes["nested"]["at"])
    )
    assert notes["checked"] == 3 and notes["flag_at"] is True  # counts and flags stay as they are


def test_doctor_evidence_reads_as_lines() -> None:
    assert readable(True) == "yes" and readable(False) == "no"
    assert readable({}) == "none" and readable([]) == "none" and readable(None) == "-"
    assert readable(12345) == "12,345"
    assert readable({"v1": "loaded, 384 dims"}) == "v1 loaded, 384 dims"
    cases = [{"user": "user-03", "note": "note-000123", "overlap": 0.4}] * 2
    assert readable(cases).splitlines() == ["- user user-03, note note-000123, overlap 0.4"] * 2
    nested = readable({"new": {"model": "m", "metric": "cosine", "dimensions": 384, "x": 1}})
    assert nested.splitlines() == [
        "new:",
        "  model m",
        "  metric cosine",
        "  dimensions 384",
        "  x 1",
    ]
    for text in (readable(cases), nested):
        assert "{" not in text and "True" not in text
