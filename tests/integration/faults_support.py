"""What the worker fault tests (``test_faults_*.py``) share: note texts, job ids, and the check
that every job was stored exactly once.

``conftest.py`` has pytest rewrite this module's asserts, and holds the ``backend`` fixture.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from constellation import records
from constellation.plan import Plan
from constellation.services import Services
from tests.integration.conftest import WorkerProcess
from tests.support.model import MODEL

StartWorker = Callable[..., WorkerProcess]

TOPICS = (
    "the garden needs watering before the heat wave, tomatoes and basil first",
    "quarterly budget review: travel costs are up, software licences are down",
    "reading list for the holidays includes two novels and a history of maps",
    "call the plumber about the leaking kitchen tap and the noisy boiler",
    "ideas for the team offsite: a walk by the lake, a cooking class, a museum",
    "notes from the physics lecture on waves, interference and diffraction",
)


def note_text(i: int, sentences: int = 1) -> str:
    return " ".join(
        f"Note {i}, part {s}: {TOPICS[(i + s) % len(TOPICS)]}." for s in range(sentences)
    )


def record_ids(bodies: list[str]) -> list[str]:
    out = []
    for body in bodies:
        job = json.loads(body)
        out.append(records.record_id(job["userId"], job["noteId"], job["version"]))
    return out


def assert_all_stored_once(plan: Plan, bodies: list[str]) -> None:
    """Exactly one record per job, with that job's metadata; both queues empty."""
    with Services(plan, write=False) as services:
        index = services.index()
        ids = record_ids(bodies)
        stored = index.get(ids)
        assert index.count() == len(bodies) == len(set(ids))
        assert sorted(stored) == sorted(ids)
        for record_id, body in zip(ids, bodies, strict=True):
            job = json.loads(body)
            meta = stored[record_id].metadata
            assert (meta["userId"], meta["noteId"], meta["created"], meta["model"]) == (
                job["userId"],
                job["noteId"],
                job["created"],
                MODEL,
            )
        assert services.queue.depth().total == 0
        assert services.dead_letter.depth().total == 0
