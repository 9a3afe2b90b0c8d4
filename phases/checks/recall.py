"""``check recall``: does the new index find what exact search finds?

Approximate search (Chroma's HNSW) trades recall for speed, and an index can be damaged in
ways overlap with the old system does not show. For a sample of users, every note of the user
is embedded again from the notes source, with the worker's preprocessing and model, and
searched exactly (brute-force cosine with numpy); sampled queries (a few words from one of the
user's notes) then go to the index through its port, and recall@k is the share of the exact
top-k the index returns. The ground truth never comes from the stored vectors: an index whose
vectors were replaced by noise would agree with an exact search over that same noise.

A stored record older than its note (an edit not yet processed) counts as a miss: to the user
it is one. A tie at the k-th place counts as found whichever of the tied notes the index gives.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from constellation.embedders.memo import remembered
from constellation.embedders.port import Embedder
from constellation.index.port import VectorIndex
from constellation.migration.source import Note
from constellation.preprocess import prepare
from constellation.query import embed_query
from constellation.wiring.migration import Migration
from phases.checks.gates import GateCheck, Outcome, outcome_of

#: progress callback: (what, total or None, advance by)
Progress = Callable[[str, int | None, int], None]
#: notes embedded per model call
BATCH = 64
#: exact scores this close to the k-th one are a tie
TIE = 1e-4
#: users counted per user wanted, at most, while sampling
LOOK = 20


@dataclass(frozen=True)
class UserRecall:
    user_id: str
    notes: int
    queries: int
    recall: float


@dataclass(frozen=True)
class Miss:
    """A query whose index results lacked some of the exact top-k."""

    user_id: str
    query: str
    recall: float
    missing: tuple[str, ...]


@dataclass
class RecallReport:
    k: int
    min_recall: float
    version: int
    users: list[UserRecall] = field(default_factory=list)
    queries: int = 0
    recall: float | None = None
    #: notes embedded again for the exact search
    embedded: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    worst: list[Miss] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    __json_properties__ = ("outcome",)

    @property
    def outcome(self) -> Outcome:
        """Inconclusive without a single query (no notes to judge by), else pass or fail."""
        if self.recall is None:
            return "inconclusive"
        return outcome_of(self.recall >= self.min_recall)

    def as_check(self) -> GateCheck:
        value = (
            "no queries (no notes)"
            if self.recall is None
            else f"{self.recall:.3f} over {self.queries} queries of {len(self.users)} users"
        )
        return GateCheck(
            f"recall@{self.k} vs exact search",
            self.outcome,
            value,
            f">= {self.min_recall}",
            dry_run=self.dry_run,
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _phrase(rng: random.Random, note: Note) -> str:
    words = note.content.split()
    start = rng.randrange(max(1, len(words) - 8))
    return " ".join(words[start : start + rng.randint(3, 8)])


def check_recall(
    m: Migration,
    *,
    users: int | None = None,
    queries: int | None = None,
    k: int | None = None,
    min_recall: float | None = None,
    version: int | None = None,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> RecallReport:
    """Recall@k of the new index against exact search over sampled users' notes, embedded
    again from the notes source."""
    config = m.plan.migration.recall
    k = config.k if k is None else k
    version = m.state.read().read_versions[0] if version is None else version
    m.plan.declared([version], field="version")
    report = RecallReport(
        k, config.min_recall if min_recall is None else min_recall, version, dry_run=config.dry_run
    )
    started = time.perf_counter()
    embedder = m.services.embedder(version)
    index = m.services.index(version)
    rng = random.Random(seed)
    chosen = _sample_users(m, users or config.users, k, rng, report)
    total = sum(count for _, count in chosen)
    found = 0.0
    # As many model calls at once as the model has streams (each on its share of the cores)
    with ThreadPoolExecutor(m.plan.model(version).streams, thread_name_prefix="recall") as pool:
        for user_id, _count in chosen:
            notes = list(m.source.iter_notes(user_id=user_id))
            prepared = prepare([n.content for n in notes], embedder)
            kept = [(n, p.text) for n, p in zip(notes, prepared, strict=True) if not p.empty]
            if not kept:
                continue
            exact = _unit(_embedded(pool, embedder, [text for _, text in kept], total, on_progress))
            ids = [n.id for n, _ in kept]
            asked = 0
            user_found = 0.0
            for _ in range(queries or config.queries):
                query = _phrase(rng, rng.choice(kept)[0])
                vector = embed_query(query, embedder)
                if vector is None:
                    continue
                q = _unit(np.asarray([vector], dtype=np.float32))[0]
                recall, missing = _recall_one(q, exact, ids, k, index, user_id, version)
                asked += 1
                user_found += recall
                if missing:
                    report.worst.append(Miss(user_id, query, recall, missing))
            report.embedded += len(kept)
            report.queries += asked
            found += user_found
            report.users.append(UserRecall(user_id, len(kept), asked, user_found / max(asked, 1)))
    if report.queries:
        report.recall = found / report.queries
    report.worst.sort(key=lambda miss: miss.recall)
    del report.worst[10:]
    report.seconds = time.perf_counter() - started
    return report


def _embedded(
    pool: ThreadPoolExecutor,
    embedder: Embedder,
    texts: list[str],
    total: int,
    on_progress: Progress | None,
) -> np.ndarray:
    """The texts' vectors, :data:`BATCH` texts a model call, the calls spread over ``pool``."""
    chunks = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    vectors = []
    for chunk, found in zip(
        chunks, pool.map(lambda c: remembered(embedder, c), chunks), strict=True
    ):
        vectors.append(np.asarray(found, dtype=np.float32))
        if on_progress:
            on_progress("recall: notes embedded again", total, len(chunk))
    return np.concatenate(vectors)


def _recall_one(
    q: np.ndarray,
    exact: np.ndarray,
    ids: Sequence[str],
    k: int,
    index: VectorIndex,
    user_id: str,
    version: int,
) -> tuple[float, tuple[str, ...]]:
    """The index's recall@k for one query vector, and the exact top-k notes it missed."""
    scores = exact @ q
    top = min(k, len(ids))
    order = np.argsort(-scores, kind="stable")[:top]
    threshold = float(scores[order[-1]]) - TIE
    by_id = dict(zip(ids, scores.tolist(), strict=True))
    hits = index.query(q, user_id=user_id, top_k=top, version=version)
    returned = [str(h.metadata.get("noteId")) for h in hits]
    # a returned note counts when its exact score makes the top-k (ties included)
    good = sum(1 for note in dict.fromkeys(returned) if by_id.get(note, -2.0) >= threshold)
    missing = tuple(ids[i] for i in order if ids[i] not in set(returned))
    return min(good, top) / top, missing if good < top else ()


def _sample_users(
    m: Migration, wanted: int, k: int, rng: random.Random, report: RecallReport
) -> list[tuple[str, int]]:
    """Users picked at random, preferring those with more than ``k`` notes (with k or fewer,
    every search returns all of them, which says nothing about the index), within the plan's
    budget of notes to embed again. At most ``LOOK`` times ``wanted`` users are counted."""
    budget = m.plan.migration.recall.max_notes
    everyone = m.source.users()
    rng.shuffle(everyone)
    chosen: list[tuple[str, int]] = []
    small: list[tuple[str, int]] = []
    spent = 0
    for user in everyone[: LOOK * wanted]:
        if len(chosen) == wanted:
            break
        count = m.source.count(user_id=user)
        if count <= k:
            small.append((user, count))
        elif spent + count > budget:
            report.notes.append(f"user {user} skipped: {count:,} notes exceed the budget")
        else:
            chosen.append((user, count))
            spent += count
    if not chosen:  # only small users: judge by them rather than not at all
        chosen = small[:wanted]
        if chosen:
            report.notes.append(f"every sampled user has {k} notes or fewer")
    return chosen
