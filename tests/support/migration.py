"""A small migration rig: a plan in a temporary folder, a sample app, fast fake embeddings.

The queue (SQLite), the indexes (embedded Chroma), the state and the notes source are real; the
model is the recording fake, so phase logic is tested in seconds. The demo test and the
integration tests use the real model.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from constellation.ledger.notes import step_started_at
from constellation.migration.source import Note, NotesSource, create_notes_table, insert_notes
from constellation.plan import Plan, load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.operate.provision import provision
from phases.sample_notes import sample_notes, search_phrases
from tests.fakes import RecordingEmbedder
from tests.support.cli import REPO

#: test settings: small gates, short timeouts
OVERRIDES = {
    "queue": {"visibility_timeout": 5, "wait_time": 1},
    "consumer": {"max_batch_timeout": "0.2s", "poll_interval": "0.05s"},
    "migration": {
        "consistency": {"sample_size": 30},
        "traffic": {
            "min_comparisons": 10,
            "dwell": "1s",
            "state_refresh": 0,
            "shadow_timeout": "1s",
        },
    },
}


def _merge(base: dict, extra: dict) -> dict:  # type: ignore[type-arg]
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def write_plan(folder: Path, overrides: dict | None = None) -> Path:  # type: ignore[type-arg]
    """plans/local.yaml with the test overrides, in ``folder``."""
    data = yaml.safe_load((REPO / "plans/local.yaml").read_text())
    data["data_dir"] = "./data"
    # The demo's sample app keeps its own layout and text preparation; the rig's old system is
    # in Constellation's record format with our preparation (the fake model makes any text
    # difference a different vector), unless ``overrides`` say otherwise.
    for key in ("layout", "preprocess"):
        data["legacy"].pop(key, None)
    _merge(data, OVERRIDES)
    _merge(data, overrides or {})
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sample_app(plan: Plan, services: Services, notes: int = 120, users: int = 6) -> list[Note]:
    """The app before the migration: a notes table and the old index filled inline."""
    sample = sample_notes(notes, users)
    create_notes_table(plan.source_url)
    source = NotesSource.from_plan(plan)
    insert_notes(source, sample)
    source.close()
    m = Migration(plan, services)
    m.legacy.write_many(sample)
    m.close()
    return sample


def rig(folder: Path, overrides: dict | None = None) -> tuple[Plan, Services]:  # type: ignore[type-arg]
    plan = load_plan(write_plan(folder, overrides))
    shutil.rmtree(plan.data_dir, ignore_errors=True)
    embedder = RecordingEmbedder(model_id="all-MiniLM-L6-v2", dimension=384, max_tokens=256)
    return plan, Services(plan, embedders={1: embedder})


class RigMigration(Migration):
    """A migration over a sample app; ``sample`` holds the app's notes."""

    sample: list[Note]


@contextmanager
def started(
    folder: Path,
    notes: int = 120,
    users: int = 6,
    overrides: dict | None = None,  # type: ignore[type-arg]
) -> Iterator[RigMigration]:
    """A provisioned plan (with ``overrides``) over a sample app, before phase 1."""
    plan, services = rig(folder, overrides)
    sample = sample_app(plan, services, notes=notes, users=users)
    provision(plan, services)
    migration = RigMigration(plan, services)
    migration.sample = sample
    try:
        yield migration
    finally:
        migration.close()
        services.close()


def search_until(m: RigMigration, comparisons: int, seed: int = 11) -> None:
    """App searches through the router until the log holds that many comparisons since the
    current step began."""
    router = m.router()
    phrases = search_phrases(m.sample, seed)
    since = step_started_at(m.state.read().notes)
    deadline = time.monotonic() + 60
    while m.comparisons.summary(since).comparisons < comparisons:
        user, text = next(phrases)
        router.search(text, user)
        assert time.monotonic() < deadline, "the app's searches produced too few comparisons"
    router.close()
