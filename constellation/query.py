"""The query path: the same preprocessing and model as the worker, always filtered by user.

There is no function here, or in the index port, that searches without a ``user_id``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from constellation import records
from constellation.embedders.memo import remembered
from constellation.embedders.port import Embedder, load_model
from constellation.index.port import Hit, VectorIndex
from constellation.preprocess import normalize, prepare
from constellation.timefields import EPOCH_MS


def require_user(user_id: str) -> None:
    """The one user guard of every search (ours, the router's, the old system's): no user id,
    or one of only whitespace, is refused before any system is asked."""
    if not user_id or not user_id.strip():
        raise ValueError("a search needs a user id: no query may cross users")


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty after preprocessing: a search for it finds nothing by design."""
    return not normalize(text)


@dataclass(frozen=True)
class SearchResult:
    """One note found for a user."""

    note_id: str
    score: float
    created: int = field(metadata=EPOCH_MS)
    version: int

    @classmethod
    def from_hit(cls, hit: Hit) -> SearchResult:
        meta = hit.metadata
        return cls(
            note_id=str(meta[records.NOTE]),
            score=hit.score,
            created=records.created_of(meta),
            version=int(meta.get(records.VERSION, 0)),
        )


@dataclass(frozen=True)
class Searched:
    """One user's search as every caller gets it (:meth:`Migration.search
    <constellation.wiring.migration.Migration.search>`): the notes found, the model versions
    searched and, when nothing was found, why (the user has no notes there, or the text is
    empty after preprocessing)."""

    user_id: str
    results: list[SearchResult]
    #: the model versions searched, newest preferred when there are several
    versions: tuple[int, ...]
    #: why nothing was found; empty when something was
    explanation: str = ""


def embed_query(text: str, embedder: Embedder, *, remember: bool = True) -> Sequence[float] | None:
    """The query's vector, or None when the text is empty after preprocessing. A text this
    embedder embedded lately is not embedded again (:mod:`constellation.embedders.memo`)
    unless ``remember`` is False (what times the model must call it)."""
    (prepared,) = prepare([text], embedder)
    if prepared.empty:
        return None
    if not remember:
        return embedder.embed([prepared.text])[0]
    return remembered(embedder, [prepared.text])[0]


def search(
    text: str,
    *,
    user_id: str,
    index: VectorIndex,
    embedder: Embedder,
    top_k: int = 10,
    version: int | None = None,
    observe: Callable[[float], None] | None = None,
) -> list[SearchResult]:
    """The ``top_k`` notes of ``user_id`` closest to ``text`` (of one model version if given).

    ``observe`` receives the query's latency in seconds (for metrics).
    """
    require_user(user_id)
    load_model(embedder)  # a model's first load is its own figure, not this search's time
    started = time.perf_counter()
    vector = embed_query(text, embedder)
    results: list[SearchResult] = []
    if vector is not None:
        hits = index.query(vector, user_id=user_id, top_k=top_k, version=version)
        # Defence in depth: even a misbehaving adapter cannot leak another user's note.
        results = [
            SearchResult.from_hit(h) for h in hits if h.metadata.get(records.USER) == user_id
        ]
    if observe is not None:
        observe(time.perf_counter() - started)
    return results


def search_versions(
    text: str,
    *,
    user_id: str,
    sources: Sequence[tuple[int, VectorIndex, Embedder]],
    top_k: int = 10,
    observe: Callable[[float], None] | None = None,
) -> list[SearchResult]:
    """Search several model versions at once, as during a model upgrade.

    Each version is searched with its own model; a note found under several versions keeps the
    newest version's result; duplicates by noteId are dropped; the best ``top_k`` remain.
    """
    for _version, _index, embedder in sources:
        load_model(embedder)  # not this search's time
    started = time.perf_counter()
    merged: dict[str, SearchResult] = {}
    for version, index, embedder in sorted(sources, key=lambda s: -s[0]):
        for result in search(
            text, user_id=user_id, index=index, embedder=embedder, top_k=top_k, version=version
        ):
            merged.setdefault(result.note_id, result)
    if observe is not None:
        observe(time.perf_counter() - started)
    return sorted(merged.values(), key=lambda r: -r.score)[:top_k]
