"""Damaged files: every command that opens one names it and what to do, in one line, and exits
non-zero; an emptied or missing state beside the plan's data is an error, never "not started".

The files are real (SQLite state, SQLite queue, an embedded Chroma folder, a metrics file,
gzipped archives), damaged the ways disks and operators damage them: overwritten, torn,
truncated, emptied or deleted. Commands run through the CLI; the model is the recording fake
(none of these commands embeds), except for ``query``.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from constellation import records
from constellation.errors import DamagedFile
from constellation.index.port import VectorRecord
from constellation.jobs import Job
from constellation.queues.port import Outgoing
from constellation.queues.sqlite import SqliteBroker
from constellation.wiring.migration import Migration
from phases.migrate.archive import Archive, archive_count
from tests.support.cli import REPO, Invoke
from tests.support.migration import RigMigration, started


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RigMigration]:
    """A provisioned plan over a sample app (30 notes), before phase 1; files closed."""
    with started(tmp_path, notes=30, users=3) as m:
        m.services.close()
        m.close()
        yield m


def run(invoke: Invoke, app: Migration, *args: str) -> Result:
    return invoke("--plan", str(app.plan.file), *args)


def refused(result: Result, *needles: str) -> str:
    """The command failed with one error line naming ``needles``; returns that line."""
    text = result.stderr
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output, result.output
    assert text.count("error:") == 1, text
    flat = " ".join(text.split())
    for needle in needles:
        assert needle in flat, (needle, text)
    return flat


def fresh_chroma() -> None:
    """Forget the Chroma systems this process opened, so the next opening reads the disk (as
    a new command's process would)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def overwrite(path: Path, at: int, size: int) -> None:
    with path.open("r+b") as file:
        file.seek(at)
        file.write(os.urandom(size))


# the migration state ------------------------------------------------------------------------
def finished(app: RigMigration) -> Path:
    """The migration state after phase 4, with its archive; returns the state file."""
    app.state.change("test", "phase 4 done", phase=4, status="complete", write_mode="new")
    archive = app.plan.data_dir / "archive" / f"{app.plan.legacy.name}.jsonl.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(archive, "wt") as out:
        out.write('{"id": "x"}\n')
    app.close()
    return Path(app.plan.state_url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("how", ["emptied", "deleted"])
def test_a_lost_state_beside_a_finished_migration_is_an_error_not_not_started(
    app: RigMigration, invoke: Invoke, how: str
) -> None:
    state_file = finished(app)
    for file in sqlite_files(state_file):
        file.unlink(missing_ok=True)
    if how == "emptied":
        state_file.write_bytes(b"")
    status = run(invoke, app, "migrate", "status")
    line = refused(status, str(state_file), "restore it from a backup", "archive")
    assert "not started" not in status.stdout and "'not started'" in line
    # nothing starts over on it either, provision included
    refused(run(invoke, app, "migrate", "phase", "1"), str(state_file))
    again = run(invoke, app, "provision")
    assert again.exit_code != 0 and "Restore it from a backup" in " ".join(again.stderr.split())


def test_a_fresh_plan_is_not_started_and_provision_records_it(
    tmp_path: Path, invoke: Invoke, local_plan: Path, shared_model: None
) -> None:
    status = invoke("--plan", str(local_plan), "traffic", "show")
    assert status.exit_code == 0, status.output  # no data yet: nothing is missing
    assert invoke("--plan", str(local_plan), "provision").exit_code == 0
    again = invoke("--plan", str(local_plan), "migrate", "status")
    assert again.exit_code == 0 and "not started" in again.stdout
    journal = " ".join(again.stdout.split())
    assert "provision" in journal  # the record's first journal entry


def test_a_plan_provisioned_without_a_record_gets_one_from_provision(
    app: RigMigration, invoke: Invoke
) -> None:
    app.close()
    state_file = Path(app.plan.state_url.removeprefix("sqlite:///"))
    for file in sqlite_files(state_file):  # as a provision that recorded no state left it
        file.unlink(missing_ok=True)
    refused(run(invoke, app, "migrate", "status"), str(state_file), "constellation provision")
    assert run(invoke, app, "provision").exit_code == 0  # the new index holds no records
    status = run(invoke, app, "migrate", "status")
    assert status.exit_code == 0 and "not started" in status.stdout, status.output


def test_a_corrupt_state_database_names_the_file(app: RigMigration, invoke: Invoke) -> None:
    state_file = finished(app)
    overwrite(state_file, 0, 100)  # the header: "file is not a database"
    line = refused(run(invoke, app, "migrate", "status"), str(state_file), "restore it")
    assert "state_url" not in line


# the queue file ---------------------------------------------------------------------------------
def test_an_overwritten_queue_file_is_named(app: RigMigration, invoke: Invoke) -> None:
    overwrite(app.plan.queue_path, 0, 100)
    for args in (("describe",), ("enqueue", "--user", "u1", "--note", "n1", "--text", "hi")):
        refused(run(invoke, app, *args), str(app.plan.queue_path), "provision")


def test_a_torn_queue_file_is_named_by_the_worker_side_too(app: RigMigration) -> None:
    broker = SqliteBroker(app.plan.queue_path)
    queue = broker.open(app.plan.queue.name)
    body = Job("u1", "n", "x" * 2000, 1, 1).to_body()
    assert queue.send_batch([Outgoing(body)] * 300).ok
    broker.close()
    for file in sqlite_files(app.plan.queue_path)[1:]:
        assert not file.exists() or file.stat().st_size < 10_000_000
    import sqlite3

    with sqlite3.connect(app.plan.queue_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    overwrite(app.plan.queue_path, 4096 * 4, 4096 * 20)  # pages in the middle
    broker = SqliteBroker(app.plan.queue_path)
    with pytest.raises(DamagedFile) as damaged:
        broker.open(app.plan.queue.name).receive(max_messages=10)
    assert damaged.value.path == str(app.plan.queue_path)
    assert "malformed" in str(damaged.value)
    broker.close()


# the Chroma folder ------------------------------------------------------------------------------
def test_an_overwritten_chroma_file_is_named(app: RigMigration, invoke: Invoke) -> None:
    fresh_chroma()
    chroma_file = app.plan.index_path / "chroma.sqlite3"
    overwrite(chroma_file, 0, 100)
    fresh_chroma()
    refused(run(invoke, app, "describe"), str(chroma_file), "requeue --all")


def fill_index(app: RigMigration, count: int = 1200) -> None:
    """``count`` records of user u1 straight into the new index (enough for Chroma to keep
    its vectors in its HNSW files, not only in its log)."""
    from constellation.services import Services

    services = Services(app.plan, embedders={1: app.services.embedder()})
    index = services.index()
    batch: list[VectorRecord] = []
    for i in range(count):
        job = Job("u1", f"n{i}", f"note {i}", 1_700_000_000_000, 1)
        vector = [1.0 + ((i * 31 + d * 17) % 997) / 997 for d in range(384)]
        meta = records.metadata(job, records.content_hash(job.text, "m"), "m")
        batch.append(VectorRecord(records.record_id("u1", f"n{i}", 1), vector, meta))
    for start in range(0, count, 300):
        index.upsert(batch[start : start + 300])
    services.close()
    fresh_chroma()


def empty_hnsw(app: RigMigration) -> None:
    (data,) = app.plan.index_path.glob("*/data_level0.bin")
    data.write_bytes(b"")
    fresh_chroma()


def cli_process(app: Migration, *args: str) -> subprocess.CompletedProcess[str]:
    """``constellation ARGS`` in a process of its own (Chroma keeps what a process loaded,
    and a file emptied under a process that mapped it is not what an operator meets)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--plan", str(app.plan.file), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_emptied_vector_file_is_found_not_served_as_empty_results(app: RigMigration) -> None:
    fill_index(app)
    empty_hnsw(app)
    described = cli_process(app, "describe")
    assert described.returncode == 1, described.stderr
    assert "version 1's vectors cannot be read" in " ".join(described.stderr.split())
    searched = cli_process(app, "query", "note", "--user", "u1")
    assert searched.returncode not in (0, None) and "Traceback" not in searched.stderr
    assert "user u1 has 1,200 record(s) there but the search found none" in " ".join(
        searched.stderr.split()
    )
    recovered = cli_process(app, "recover")
    assert recovered.returncode == 1, recovered.stderr
    assert "the index's vectors cannot be read" in " ".join(recovered.stderr.split())


def test_a_torn_chroma_file_is_named(app: RigMigration, invoke: Invoke) -> None:
    fill_index(app, count=1200)
    chroma_file = app.plan.index_path / "chroma.sqlite3"
    for extra in sqlite_files(chroma_file)[1:]:
        extra.unlink(missing_ok=True)
    os.truncate(chroma_file, chroma_file.stat().st_size // 2)  # a copy cut short
    fresh_chroma()
    line = refused(run(invoke, app, "describe"), str(chroma_file), "restore the folder")
    assert "malformed" in line


def test_a_readable_index_answers_its_sample_query(app: RigMigration) -> None:
    from constellation.readback import read_back
    from constellation.services import Services

    fill_index(app, count=50)
    with Services(app.plan, write=False) as services:
        check = read_back(services.index(), 1)
    assert check.ok and check.record_id is not None, check


# archives ---------------------------------------------------------------------------------------
def test_a_damaged_archive_is_named_and_written_again(tmp_path: Path) -> None:
    path = tmp_path / "archive" / "notes-legacy.jsonl.gz"
    path.parent.mkdir()
    whole = gzip.compress(b"".join(b'{"id": "%d"}\n' % i for i in range(2000)))
    path.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(DamagedFile, match=r"the archive .*notes-legacy\.jsonl\.gz is damaged"):
        archive_count(path)
    stored = [records_of(i) for i in range(5)]
    step = Archive("the legacy index", lambda: iter(stored), lambda: 5, path)
    check = step.check()
    assert check.action == "create" and "is damaged" in check.detail
    assert step.apply() == "5 records, verified"
    assert archive_count(path) == 5


def records_of(i: int) -> object:
    from constellation.index.port import StoredRecord

    return StoredRecord(f"r{i}", {"userId": "u"}, [0.1, 0.2])


def test_a_killed_archive_run_leaves_no_partial_file_after_the_next(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    stamp = folder / "notes-20260101T000000.jsonl.gz"

    def dies() -> Iterator[object]:
        yield records_of(0)
        raise KeyboardInterrupt  # the operator's terminal went away mid-archive

    with pytest.raises(KeyboardInterrupt):
        Archive("the new index", dies, lambda: 1, stamp).apply()
    assert [p.name for p in folder.iterdir()] == ["notes-20260101T000000.jsonl.gz.partial"]
    later = folder / "notes-20260102T000000.jsonl.gz"
    step = Archive(
        "the new index",
        lambda: iter([records_of(0)]),
        lambda: 1,
        later,
        stale=("notes-[0-9]*.partial",),
    )
    assert "removed 1 partial file(s) of an interrupted run" in step.apply()
    assert [p.name for p in folder.iterdir()] == [later.name]


# monitoring files -------------------------------------------------------------------------------
def test_a_damaged_metrics_file_is_named(app: RigMigration, invoke: Invoke) -> None:
    metrics = app.plan.metrics_path
    metrics.write_bytes(os.urandom(4096))
    refused(run(invoke, app, "stats"), str(metrics), "move it aside")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_dashboard_that_cannot_be_written_says_so(app: RigMigration, invoke: Invoke) -> None:
    refused(run(invoke, app, "dashboard", "--html", "/dev/full"), "/dev/full", "No space left")


def test_a_torn_chroma_file_stops_the_worker_with_one_line(
    app: RigMigration, invoke: Invoke
) -> None:
    """D7: a truncated chroma.sqlite3 stops `worker run --drain` with one line (exit 1),
    whether a job waits or the queue is empty, and keeps the job; a second look in the same
    process names the damage again (not chromadb's half-started client)."""
    fill_index(app, count=300)
    chroma_file = app.plan.index_path / "chroma.sqlite3"
    for extra in sqlite_files(chroma_file)[1:]:
        extra.unlink(missing_ok=True)
    os.truncate(chroma_file, chroma_file.stat().st_size // 2)
    fresh_chroma()
    for _ in range(2):  # the second in the same process, as a worker's retry would be
        refused(run(invoke, app, "query", "note", "--user", "u1"), str(chroma_file))
    for queued in (0, 1):
        if queued:
            sent = run(invoke, app, "enqueue", "--user", "u1", "--note", "n1", "--text", "x")
            assert sent.exit_code == 0, sent.output
        drained = cli_process(app, "worker", "run", "--drain")  # bounded: timeout=600
        assert drained.returncode == 1, (drained.stdout, drained.stderr)
        assert "Traceback" not in drained.stderr, drained.stderr
        assert drained.stderr.count("error:") == 1, drained.stderr
        assert str(chroma_file) in " ".join(drained.stderr.split())
    depth = SqliteBroker(app.plan.queue_path).inspect(app.plan.queue.name)
    assert depth is not None and depth.depth.total == 1  # the job is kept
