"""Gate outcomes, the quality measures and the judged query set's loader (pure logic)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from constellation.errors import InputFileError
from constellation.ledger.comparisons import ComparisonSummary
from constellation.plan import TrafficConfig
from phases.checks.capacity import CHROMA_DISK, CHROMA_MEMORY, Footprint
from phases.checks.gates import Gate, GateCheck, combine, traffic_gate
from phases.checks.golden import load_golden
from phases.checks.quality import ndcg_at, recall_at, reciprocal_rank

BOUNDS = TrafficConfig(min_comparisons=50, min_overlap=0.7, max_p95_latency_ms=500)


def summary(comparisons: int, overlap: float | None, errors: float = 0.0) -> ComparisonSummary:
    return ComparisonSummary(comparisons, comparisons, overlap, errors, 0.0, 40.0, 30.0)


def test_a_gate_fails_on_any_failure_else_waits_on_any_undecided_else_passes() -> None:
    assert combine(["pass", "inconclusive", "fail"]) == "fail"
    assert combine(["pass", "inconclusive"]) == "inconclusive"
    assert combine(["pass", "pass"]) == "pass"
    assert combine([]) == "pass"


def test_a_dry_run_check_is_shown_but_never_decides() -> None:
    gate = Gate("g", [GateCheck("a", "pass", "1", "1"), GateCheck("b", "fail", "0", "1", True)])
    assert gate.outcome == "pass" and gate.failing() == ""
    assert gate.checks[1].label == "fail (dry run)"
    deciding = Gate("g", [*gate.checks, GateCheck("c", "inconclusive", "3", ">= 50")])
    assert deciding.outcome == "inconclusive"
    assert deciding.explain() == "c: 3 (needs >= 50)"


def test_too_few_comparisons_are_inconclusive_not_failed_even_when_they_disagree() -> None:
    few = traffic_gate(summary(12, 0.1, errors=0.5), BOUNDS)
    assert few.outcome == "inconclusive"
    assert {c.name: c.outcome for c in few.checks} == {
        "comparisons since the last step": "inconclusive",
        "mean overlap": "inconclusive",
        "candidate error rate": "inconclusive",
        "candidate p95 latency": "inconclusive",
    }
    assert few.checks[1].value == "0.100"  # still measured and shown
    assert traffic_gate(summary(50, 0.1), BOUNDS).outcome == "fail"
    assert traffic_gate(summary(50, 0.9), BOUNDS).outcome == "pass"
    assert (
        traffic_gate(summary(50, 0.9, errors=0.2), BOUNDS)
        .failing()
        .startswith("candidate error rate: 20.0%")
    )


def test_a_bool_outcome_from_an_older_caller_becomes_pass_or_fail() -> None:
    assert GateCheck("x", True, "", "").outcome == "pass"  # type: ignore[arg-type]
    assert GateCheck("x", False, "", "").outcome == "fail"  # type: ignore[arg-type]


def test_recall_mrr_and_ndcg_by_hand() -> None:
    found = ["a", "x", "b", "y"]
    assert recall_at(found, ["a", "b", "c"], 10) == pytest.approx(2 / 3)
    assert recall_at(found, ["a", "b", "c"], 2) == pytest.approx(1 / 3)
    assert reciprocal_rank(found, ["b"], 10) == pytest.approx(1 / 3)
    assert reciprocal_rank(found, ["b"], 2) == 0.0
    # relevant at ranks 1 and 3; the ideal puts the two at ranks 1 and 2
    dcg = 1 + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at(found, ["a", "b"]) == pytest.approx(dcg / ideal)
    assert ndcg_at(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert ndcg_at(["x"], ["a"]) == 0.0


def test_a_bad_judged_file_names_every_problem_with_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    lines = [
        json.dumps({"userId": "u1", "query": "milk", "relevant": ["n1"]}),
        "{not json",
        json.dumps({"userId": "", "query": "eggs", "relevant": ["n2"]}),
        "",
        json.dumps({"userId": "u2", "query": "bread", "relevant": []}),
        json.dumps(["a list"]),
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError) as caught:
        load_golden(path)
    error = caught.value
    assert error.exit_code == 2
    where = [(i.line, i.field) for i in error.issues]
    assert where == [(2, ""), (3, "userId"), (5, "relevant"), (6, "")]
    assert f"{path}:3: userId: required: a non-empty string (got '')" in str(error)
    assert f"{path}:5: relevant: required: a non-empty list of noteIds" in str(error)


def test_a_good_judged_file_loads_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_text(
        json.dumps({"userId": "u1", "query": "milk", "relevant": ["n1", "n1", "n2"], "x": 1})
        + "\n\n"
        + json.dumps({"userId": "u2", "query": "eggs", "relevant": ["n3"]})
        + "\n"
    )
    judged = load_golden(path)
    assert [(j.line, j.user_id, j.relevant) for j in judged] == [
        (1, "u1", ("n1", "n2")),
        (3, "u2", ("n3",)),
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputFileError, match="no judged queries"):
        load_golden(empty)


def test_the_footprint_arithmetic() -> None:
    assert Footprint(factor=2.0, fixed=100.0).bytes(1000, 384) == 1000 * (384 * 4 * 2 + 100)
    # the measured factors make an index bigger than its raw vectors, on disk and in memory
    for measured in (CHROMA_DISK, CHROMA_MEMORY):
        assert measured.bytes(10_000, 384) > 10_000 * 384 * 4
