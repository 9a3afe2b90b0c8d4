"""Tenant isolation, as a property: a query for a user returns that user's notes and no one else's.

Jobs go through the real worker's batch processing (record ids, metadata) into a real embedded
Chroma index, and come back through the real query path. The embedder is the recording fake: the
property is about filtering and ids, not about what the vectors mean. User and note ids are drawn
to collide: separators (``:``), escapes (``%``, ``%3A``), prefixes of one another, shared note ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from constellation.index.chroma import ChromaStore
from constellation.index.port import IndexSpec
from constellation.jobs import Job
from constellation.plan import DEFAULT_METADATA
from constellation.query import search
from constellation.queues.port import Outgoing, QueueSpec, Redrive
from constellation.queues.sqlite import SqliteBroker
from constellation.worker import BatchProcessor, WorkerStats
from tests.fakes import RecordingEmbedder

#: pieces that make ids collide under a careless escaping or filter
PIECES = st.sampled_from([":", "%", "%3A", "%25", "3A", ":v1", "a", "b", "é", " "])
IDS = (
    st.lists(PIECES | st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda s: bool(s.strip()))  # the job contract refuses blank ids
)
#: user → that user's note ids
NOTES = st.dictionaries(
    IDS, st.lists(IDS, min_size=1, max_size=4, unique=True), min_size=2, max_size=4
)


class Rig:
    def __init__(self, folder: Path) -> None:
        self.broker = SqliteBroker(folder / "queue.db")
        self.broker.create(QueueSpec("dead", 30))
        self.broker.create(QueueSpec("jobs", 30, Redrive("dead", 4)))
        self.queue = self.broker.open("jobs")
        self.dead = self.broker.open("dead")
        self.store = ChromaStore(path=folder / "chroma")
        self.embedder = RecordingEmbedder(dimension=8)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("isolation"))
    yield rig
    rig.store.close()
    rig.broker.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(notes=NOTES, stranger=IDS)
# The classic collisions: a separator inside the user id, or its escape written out literally.
@example(notes={"a:b": ["c"], "a": ["b:c"]}, stranger="a:b:c")
@example(notes={"a%3Ab": ["n"], "a:b": ["n"], "a": ["n"]}, stranger="a%")
def test_a_users_query_returns_exactly_that_users_notes(
    rig: Rig, notes: dict[str, list[str]], stranger: str
) -> None:
    index_name = f"iso-{uuid.uuid4().hex[:12]}"
    rig.store.create(IndexSpec(index_name, 8, "cosine", DEFAULT_METADATA))
    index = rig.store.open(index_name)
    try:
        processor = BatchProcessor(
            queue=rig.queue,
            dead_letter=rig.dead,
            index_for=lambda version: index,
            embedder_for=lambda version: rig.embedder,
            models={1: "fake-model"},
            max_job_bytes=64 * 1024,
            max_retries=3,
            recorder=WorkerStats(),
        )
        # `created` is unique per note, so every search result names the job it came from.
        expected: dict[str, set[tuple[str, int]]] = {}
        jobs: list[Job] = []
        for user, user_notes in notes.items():
            for note in user_notes:
                created = len(jobs) + 1
                jobs.append(Job(user, note, f"shared words about the garden {created}", created, 1))
                expected.setdefault(user, set()).add((note, created))
        assert rig.queue.send_batch([Outgoing(job.to_body()) for job in jobs]).ok
        while batch := rig.queue.receive(max_messages=50):
            result = processor.process(batch)
            assert (result.rejected, result.failed) == (0, 0)
        assert index.count() == len(jobs)  # no two notes share a record

        for user in notes:
            found = search("garden", user_id=user, index=index, embedder=rig.embedder, top_k=50)
            assert sorted((r.note_id, r.created) for r in found) == sorted(expected[user])
            assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
            one_version = search(
                "garden", user_id=user, index=index, embedder=rig.embedder, top_k=50, version=1
            )
            assert len(one_version) == len(found)
            # The index itself filters (the query path's own check is only a second line).
            hits = index.query(rig.embedder.vector("garden"), user_id=user, top_k=50)
            assert {hit.metadata["userId"] for hit in hits} == {user}
            assert len(hits) == len(expected[user])
        if stranger not in notes:
            assert search("garden", user_id=stranger, index=index, embedder=rig.embedder) == []
    finally:
        rig.store.delete_index(index_name)
