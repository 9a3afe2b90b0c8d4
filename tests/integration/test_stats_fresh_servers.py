"""`stats` after two staging runs against fresh servers reports only the second (issue 15).

Its own moto server and `chroma run` (the session's are shared by other tests), stopped and
started again empty on the same ports between the runs; one data folder for both runs, as an
operator's staging checkout keeps it. Everything goes through the CLI with the real model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.jobs import Job
from tests.integration.conftest import FAST, write_plan
from tests.support import servers
from tests.support.cli import Invoke

pytestmark = [pytest.mark.model, pytest.mark.servers, pytest.mark.usefixtures("shared_model")]


@pytest.fixture
def fresh_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[servers.ManagedServer, servers.ManagedServer, Path]]:
    moto = servers.moto_server(tmp_path)
    chroma_data = tmp_path / "chroma-data"
    chroma = servers.chroma_server(chroma_data, tmp_path)
    moto.start()
    chroma.start()
    monkeypatch.setenv("SQS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("CHROMA_URL", chroma.url)
    try:
        yield moto, chroma, chroma_data
    finally:
        moto.stop()
        chroma.stop()


def one_run(invoke: Invoke, plan: Path, jobs: int, first_note: int) -> dict[str, object]:
    args = ("--plan", str(plan))
    assert invoke(*args, "provision").exit_code == 0
    lines = plan.parent / f"jobs-{first_note}.jsonl"
    lines.write_text(
        "".join(
            Job(
                f"u{i % 3}", f"n{i}", f"staging note {i} about the garden", 1_700_000_000_000, 1
            ).to_body()
            + "\n"
            for i in range(first_note, first_note + jobs)
        )
    )
    assert invoke(*args, "enqueue", "--file", str(lines)).exit_code == 0
    run = invoke(*args, "worker", "run", "--drain", "--json")
    assert run.exit_code == 0, run.output
    result = invoke(*args, "stats", "--json")
    assert result.exit_code == 0, result.output
    stats: dict[str, object] = json.loads(result.stdout)
    return stats


def test_stats_after_two_runs_against_fresh_servers_reports_only_the_second(
    invoke: Invoke,
    tmp_path: Path,
    fresh_servers: tuple[servers.ManagedServer, servers.ManagedServer, Path],
) -> None:
    moto, chroma, chroma_data = fresh_servers
    plan = write_plan(tmp_path / "staging.yaml", "staging.yaml", FAST)

    first = one_run(invoke, plan, jobs=12, first_note=0)
    assert first["jobs"]["processed"] == 12  # type: ignore[index]

    # Fresh servers: moto forgets its queues, chroma starts on an empty folder; same ports,
    # so the queue URL is the same as before: its creation time and the index's id are not.
    moto.stop()
    chroma.stop()
    shutil.rmtree(chroma_data)
    moto.start()
    chroma.start()

    second = one_run(invoke, plan, jobs=5, first_note=100)
    jobs = second["jobs"]
    assert (jobs["processed"], jobs["skipped"], jobs["failed"]) == (5, 0, 0)  # type: ignore[index]
    assert second["window"]["jobs"] == 5  # type: ignore[index]
    assert second["index_size"] == {"1": 5}
    scope, before = second["scope"], first["scope"]
    assert scope["deployment"]["key"] != before["deployment"]["key"]  # type: ignore[index]
    assert scope["deployment"]["queue"] == before["deployment"]["queue"]  # type: ignore[index]
    assert scope["since"] > before["since"]  # type: ignore[index,operator]

    table = invoke("--plan", str(plan), "stats")
    assert table.exit_code == 0, table.output
    rows = {
        cells[0]: cells[1]
        for line in table.stdout.splitlines()
        if line.startswith("│")
        for cells in [[c.strip() for c in line.strip("│").split("│")]]
    }
    assert rows["deployment"] == scope["deployment"]["key"]  # type: ignore[index]
    assert rows["totals since"] != "nothing recorded" and rows["window"].startswith("last ")
