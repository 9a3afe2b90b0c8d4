"""The old system behind a small port: ``write(note)`` and ``search(text, user_id, top_k)``.

The default, :class:`ChromaLegacy`, is what the app did before: embed the note in the caller
and write the vector straight into a Chroma collection. An operator with another old system
names their own adapter in the plan as ``legacy: {adapter: "mypackage.search:make_legacy"}``:
a callable taking ``(plan, services)`` and returning an object with ``write`` and ``search``
(``count``, ``scan`` and ``get`` are optional; phase 4's archive and ``compare`` need them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from constellation import adapters, records
from constellation.errors import IndexNotFound
from constellation.index.port import IndexSpec, StoredRecord, VectorIndex, VectorRecord
from constellation.migration.source import Note
from constellation.plan import Plan
from constellation.preprocess import prepare
from constellation.query import SearchResult, search
from constellation.services import Services


@runtime_checkable
class LegacySystem(Protocol):
    def write(self, note: Note) -> None:
        """Store (or replace) one note the old way."""
        ...

    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's ``top_k`` notes closest to ``text``."""
        ...


class ChromaLegacy:
    """Inline embedding into a Chroma collection (the embedded default's old system)."""

    def __init__(self, plan: Plan, services: Services, *, write: bool = True) -> None:
        from constellation.index.chroma import ChromaStore

        config = plan.legacy
        self.version = config.model_version
        self.model = plan.model(self.version).name
        self.embedder = services.embedder(self.version)
        if config.url:
            self.store = ChromaStore(url=config.url, write=write)
        else:
            self.store = ChromaStore(path=plan.legacy_path, write=write)
        self.name = config.name
        self.dimension = plan.model(self.version).dimensions
        self._index: VectorIndex | None = None

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            try:
                self._index = self.store.open(self.name)
            except IndexNotFound:
                # The old system always existed; an empty one is created on first use.
                self.store.create(IndexSpec(self.name, self.dimension, "cosine"))
                self._index = self.store.open(self.name)
        return self._index

    def write(self, note: Note) -> None:
        self.write_many([note])

    def write_many(self, notes: list[Note]) -> None:
        """Embed in the caller and write straight into the index: the old way."""
        prepared = prepare([n.content for n in notes], self.embedder)
        emptied = [self._id(n) for n, p in zip(notes, prepared, strict=True) if p.empty]
        if emptied:
            self.index.delete(emptied)
        keep = [(n, p) for n, p in zip(notes, prepared, strict=True) if not p.empty]
        if not keep:
            return
        vectors = self.embedder.embed([p.text for _, p in keep])
        self.index.upsert(
            [
                VectorRecord(
                    self._id(note),
                    vector,
                    records.metadata(
                        note.job(self.version),
                        records.content_hash(text.text, self.model),
                        self.model,
                    ),
                )
                for (note, text), vector in zip(keep, vectors, strict=True)
            ]
        )

    def _id(self, note: Note) -> str:
        return records.record_id(note.user_id, note.id, self.version)

    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        return search(text, user_id=user_id, index=self.index, embedder=self.embedder, top_k=top_k)

    def count(self) -> int:
        return self.index.count()

    def scan(self, batch_size: int = 500) -> Iterator[StoredRecord]:
        return self.index.scan(batch_size, include_vectors=True)

    def get(self, user_id: str, note_id: str) -> StoredRecord | None:
        record_id = records.record_id(user_id, note_id, self.version)
        return self.index.get([record_id], include_vectors=True).get(record_id)

    def close(self) -> None:
        self.store.close()


def load_legacy(plan: Plan, services: Services, *, write: bool = True) -> Any:
    """The plan's old system: the built-in Chroma one or the operator's ``module:object``."""
    name = plan.legacy.adapter
    if name == "chroma":
        return ChromaLegacy(plan, services, write=write)
    factory = adapters.load("legacy", name)
    return factory(plan, services)
