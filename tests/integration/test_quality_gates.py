"""Recall and quality with the real model: a damaged index and a worse model are stopped."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.migration.source import NotesSource, create_notes_table, insert_notes
from constellation.plan import load_plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.checks.golden import judged_from_notes, write_golden
from phases.checks.quality import check_quality
from phases.checks.recall import check_recall
from phases.migrate import model as models
from phases.migrate.backfill import backfill
from phases.migrate.drain import in_process_worker
from phases.operate.provision import provision
from phases.sample_notes import sample_notes
from tests.integration.test_gate_outcomes import replace_with_noise
from tests.support.migration import write_plan


class DegradedEmbedder:
    """The real model's vectors pulled towards noise fixed per text: a deliberately worse
    model, still deterministic and 384-dimensional."""

    def __init__(self, real: SentenceTransformerEmbedder, keep: float = 0.3) -> None:
        self.real = real
        self.keep = keep
        self.model_id = "all-MiniLM-L6-v2-degraded"
        self.dimension = real.dimension

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        return self.real.truncate(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self.real.embed(texts), dtype=np.float32)
        out = []
        for text, vector in zip(texts, vectors, strict=True):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            noise = np.random.default_rng(seed).normal(size=self.dimension).astype(np.float32)
            mixed = self.keep * vector + (1 - self.keep) * noise / np.linalg.norm(noise)
            out.append(mixed / np.linalg.norm(mixed))
        return np.stack(out)


def app_on_the_new_system(
    folder: Path, real: SentenceTransformerEmbedder, notes: int, users: int, **overrides: Any
) -> tuple[Migration, list[Any]]:
    """A notes table and the new index filled by the worker with the real model (version 1)."""
    plan = load_plan(write_plan(folder, overrides))
    services = Services(plan, embedders={1: real, 2: DegradedEmbedder(real)})
    sample = sample_notes(notes, users)
    create_notes_table(plan.source_url)
    source = NotesSource.from_plan(plan)
    insert_notes(source, sample)
    source.close()
    provision(plan, services)
    m = Migration(plan, services)
    m.state.change("test", "writes to both systems", phase=1, status="running", write_mode="dual")
    backfill(m.source, services.queue, m.state, [1])
    in_process_worker(m, None)()
    assert services.index().count() == notes
    return m, sample


@pytest.fixture
def close_after() -> Iterator[list[Migration]]:
    opened: list[Migration] = []
    yield opened
    for m in opened:
        m.close()
        m.services.close()


def test_a_fifth_of_the_vectors_replaced_by_noise_fails_the_recall_check(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, close_after: list[Migration]
) -> None:
    m, _ = app_on_the_new_system(tmp_path, embedder, notes=100, users=2)
    close_after.append(m)
    healthy = check_recall(m, users=2, queries=10)
    assert healthy.outcome == "pass", healthy
    assert healthy.embedded == 100 and healthy.recall is not None and healthy.recall >= 0.95
    replace_with_noise(m, 0.2)
    damaged = check_recall(m, users=2, queries=10)
    assert damaged.outcome == "fail"
    assert damaged.recall is not None and damaged.recall < 0.9


def test_a_model_version_worse_on_the_judged_set_fails_the_quality_gate(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, close_after: list[Migration]
) -> None:
    golden = tmp_path / "golden.jsonl"
    m, sample = app_on_the_new_system(
        tmp_path,
        embedder,
        notes=60,
        users=3,
        migration={
            "quality": {"golden": str(golden)},
            "consistency": {"min_overlap": 0.0, "sample_size": 10},
        },
    )
    close_after.append(m)
    write_golden(golden, judged_from_notes(sample, count=15))
    models.upgrade(m, 2)
    in_process_worker(m, None)()
    side_by_side = check_quality(m, versions=(1, 2))
    assert (side_by_side.baseline.system, side_by_side.candidate.system) == (
        "version 1",
        "version 2",
    )
    assert side_by_side.baseline.ndcg > 0.8  # the real model finds the judged notes
    assert side_by_side.candidate.ndcg < side_by_side.baseline.ndcg - 0.1
    assert side_by_side.outcome == "fail"

    switched = models.switch(m, 2)
    assert not switched.ok and switched.outcome == "fail"
    assert switched.gate is not None
    outcomes = {c.name: c.outcome for c in switched.gate.checks}
    assert outcomes["version 2 covers every note"] == "pass"  # only quality stops it
    assert outcomes["quality (ndcg@10, version 2 vs version 1)"] == "fail"
    assert m.state.read().read_versions == (1,)
    assert "model switch --to 2" in switched.message
