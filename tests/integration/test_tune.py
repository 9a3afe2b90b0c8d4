"""`constellation tune`: real worker trials on a scratch copy of the plan; its recommendation is
what `doctor` then advises, and nothing of the plan's own queue or index is touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.jobs import Job
from constellation.queues.port import Outgoing
from phases.doctor import doctor
from phases.operate.tune import tune
from phases.operate.tuned import Tuned, read_tuned
from tests.support.migration import RigMigration, started


@pytest.fixture
def m(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path, notes=30, users=3) as rigged:
        yield rigged


def test_tune_measures_every_setting_and_doctor_advises_its_recommendation(
    m: RigMigration,
) -> None:
    assert read_tuned(m.plan.data_dir) is None
    shown: list[str] = []
    report = tune(m, sample=24, batch_sizes=(4, 8), concurrencies=(1, 2), progress=shown.append)

    assert report.sample_from == "the notes source" and report.sample == 24
    assert [(t.max_batch_size, t.max_concurrency) for t in report.trials] == [
        (4, 1),
        (8, 1),
        (4, 2),
        (8, 2),
    ]
    assert all(t.jobs == 24 and t.jobs_per_second > 0 for t in report.trials)
    assert len(shown) == 5  # the model, then one line per trial
    best = max(t.jobs_per_second for t in report.trials)
    chosen = report.recommended
    assert chosen in report.trials and chosen.jobs_per_second >= 0.95 * best
    assert f"max_batch_size: {chosen.max_batch_size}" in report.snippet
    # the plan's own queue and index saw nothing of the trials
    assert m.services.queue.depth().total == 0
    assert m.services.index().count() == 0

    # what tune wrote is what doctor reads and advises
    stored = json.loads(report.path.read_text())
    assert len(stored["trials"]) == 4
    assert read_tuned(m.plan.data_dir) == Tuned(
        chosen.max_batch_size, chosen.max_concurrency, round(chosen.jobs_per_second, 3)
    )
    m.services.queue.send_batch(
        [Outgoing(Job("u", f"n{i}", "waiting", 1, 1).to_body()) for i in range(5)]
    )
    advice = doctor(m, samples=5, queries=0, interval=0.1)
    (finding,) = [f for f in advice.findings if f.area == "queue backlog or slow processing"]
    evidence = finding.evidence
    assert evidence["settings from"] == "constellation tune"
    assert (evidence["max_batch_size"], evidence["max_concurrency"]) == (
        chosen.max_batch_size,
        chosen.max_concurrency,
    )
    assert evidence["per-worker rate (jobs/s)"].startswith(f"{chosen.jobs_per_second:.2f}")


def test_tune_refuses_bad_settings_before_measuring(m: RigMigration) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        tune(m, batch_sizes=(0,))
    with pytest.raises(ValueError, match="model version 7"):
        tune(m, version=7)
    assert read_tuned(m.plan.data_dir) is None


@pytest.mark.usefixtures("shared_model")
def test_tune_command_with_the_real_model(invoke, local_plan: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        "--plan", str(local_plan), "tune", "--sample", "12", "--batch-sizes", "4,12",
        "--concurrency", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # no notes source yet: the sample is Python's documentation, and the report says so
    assert report["sample_from"] == "Python's documentation"
    assert [t["jobs"] for t in report["trials"]] == [12, 12]
    tuned = read_tuned(local_plan.parent / "data")
    assert tuned is not None
    assert tuned.max_batch_size == report["recommended"]["max_batch_size"]

    human = invoke("--plan", str(local_plan), "tune", "--sample", "4", "--batch-sizes", "4")
    assert human.exit_code == 0, human.output
    assert "recommended: max_batch_size 4" in human.stdout
    assert "max_concurrency:" in human.stdout

    bad = invoke("--plan", str(local_plan), "tune", "--batch-sizes", "ten")
    assert bad.exit_code == 2
    assert "--batch-sizes takes positive whole numbers" in bad.output
