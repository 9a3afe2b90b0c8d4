"""A rollback from phase 4 while the app keeps writing through `constellation serve` (D1).

The app is not Constellation: its notes table and its Chroma collection on `chroma run`, its
queue on a moto server. In phase 4 the old index misses every edit; a rollback (quick, then
full) first catches it up while the app edits notes as fast as it can, each edit its table's
row then ``POST /notes`` to the served router. However the writes interleave with the
catch-up's pages, every note in the old index afterwards holds the text its row holds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from constellation.migration.source import Note
from constellation.plan import load_plan
from constellation.wiring.migration import Migration
from phases.migrate import rollback
from phases.migrate.catchup import OLD_WRITES_STOPPED
from phases.sample_notes import sample_notes
from tests.integration.conftest import FAST, ModelServices, provision_plan, unique_names, write_plan
from tests.support.real_app import RealApp
from tests.support.serve import TOKEN_ENV, TOKENS_SECTION, WRITE_TOKEN, ServeProcess
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.model, pytest.mark.servers, pytest.mark.slow]


@pytest.fixture
def served(
    tmp_path: Path,
    embedder: Any,
    servers_env: dict[str, str],
    chroma_server: ManagedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RealApp, Path, ServeProcess, list[Note]]]:
    for name, value in TOKEN_ENV.items():
        monkeypatch.setenv(name, value)
    app = RealApp(
        f"sqlite:///{tmp_path}/app.db", f"app-{uuid.uuid4().hex[:8]}", None, chroma_server, embedder
    )
    notes = sample_notes(60, users=4)
    app.add(notes)
    settings = {
        **app.plan_sections(),
        "service": TOKENS_SECTION,
        "migration": {"traffic": {"state_refresh": "0.5s"}},
    }
    path = write_plan(tmp_path / "staging.yaml", "staging.yaml", unique_names(), FAST, settings)
    provision_plan(path)
    serve = ServeProcess(path, logs=tmp_path / "logs", env={**servers_env, **TOKEN_ENV})
    try:
        serve.wait_ready()
        yield app, path, serve, notes
    finally:
        serve.stop()
        app.close()


def to_phase4(m: Migration) -> None:
    """Phase 4 as the phase leaves it: writes to the new system only, its start noted."""
    m.state.change(
        "test",
        "phase 4",
        phase=4,
        status="running",
        write_mode="new",
        read_traffic=1.0,
        notes={OLD_WRITES_STOPPED: time.time()},
    )


class Editing:
    """The app editing its notes, each edit its row then POST /notes, until stopped."""

    def __init__(self, app: RealApp, serve: ServeProcess, notes: list[Note]) -> None:
        self.app, self.serve, self.notes = app, serve, notes
        self.stop = threading.Event()
        self.edits = 0
        self.problems: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            note = self.notes[self.edits % len(self.notes)]
            edited = self.app.edit(note, f"{note.content} (revision {self.edits})")
            body = {
                "userId": note.user_id,
                "noteId": note.id,
                "text": edited.content,
                "created": edited.updated,
            }
            answer = self.serve.call("POST", "/notes", body, token=WRITE_TOKEN)
            if answer.status != 202:
                self.problems.append(repr(answer))
            self.edits += 1

    def __enter__(self) -> Editing:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)


def stale_notes(
    m: Migration, app: RealApp, notes: list[Note], embed: Callable[..., Any]
) -> list[str]:
    """The notes whose old-index vector is not their row's current text's."""
    current = m.source.current([n.id for n in notes])
    stale = []
    for note in notes:
        row = current[note.id]
        record = m.legacy.get(row.user_id, row.id)
        assert record is not None and record.vector is not None, note.id
        want = np.asarray(embed([row.content])[0])
        got = np.asarray(record.vector)
        if float(np.dot(want, got) / np.linalg.norm(want) / np.linalg.norm(got)) < 0.999:
            stale.append(note.id)
    return stale


def test_a_rollback_from_phase4_leaves_every_notes_newest_text_in_the_old_index(
    served: tuple[RealApp, Path, ServeProcess, list[Note]], embedder: Any
) -> None:
    app, path, serve, notes = served
    plan = load_plan(path)
    for kind in ("quick", "full"):
        with ModelServices(plan, embedder) as services, Migration(plan, services) as m:
            to_phase4(m)
            time.sleep(1.0)  # the service reads the state within state_refresh (0.5 s)
            with Editing(app, serve, notes) as editing:
                deadline = time.monotonic() + 60
                # Every note edited since phase 4 began (the old index missed them all), so
                # the catch-up's page holds every note and each edit made while it embeds that
                # page is one the page's older text could overwrite.
                while editing.edits < len(notes) + 5:
                    assert time.monotonic() < deadline and editing.thread.is_alive()
                    time.sleep(0.05)
                if kind == "quick":
                    report = rollback.rollback_quick(m, force=True, reason="test")
                else:
                    report = rollback.rollback_full(m, force=True, reason="test")
                assert report.caught_up is not None and report.caught_up["written"] > 0
                before = editing.edits
                deadline = time.monotonic() + 60
                while editing.edits < before + 10:  # and some after, through dual writes
                    assert time.monotonic() < deadline and editing.thread.is_alive()
                    time.sleep(0.05)
            assert editing.problems == [], editing.problems[:3]
            stale = stale_notes(m, app, notes, embedder.embed)
            assert stale == [], f"{kind}: {len(stale)} of {len(notes)} notes hold older text"
