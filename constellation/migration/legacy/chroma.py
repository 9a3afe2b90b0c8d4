"""The old system as the app kept it in Chroma: inline embedding into the app's own collection.

The collection is the app's: its ids, its metadata keys and its text preparation come from
the plan (:mod:`.layout`). Everything here works on it as the app did: searches filtered by
the app's user key, writes with the app's ids and keys (Chroma merges metadata on upsert, so
keys the app keeps that we do not know are left as they are), and reads for the archive,
``compare``, the catch-up of a rollback and ``verify``. Nothing else in the collection is
touched, and a collection in an app layout at a path or URL the plan names is never created:
it is the app's, and a misspelt name must not become an empty index that answers nothing.

Without ``legacy.layout`` the collection is in Constellation's own record format; it, and an
old index in the data folder (no path or URL: the embedded default's sample app), is created
empty on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from constellation.embedders.memo import remembered
from constellation.errors import IndexNotFound, LegacyError, VectorIndexError
from constellation.index.chroma import ChromaStore, _metric
from constellation.index.chroma_errors import ChromaErrors, read_retrying_transient
from constellation.index.chroma_index import _records
from constellation.index.port import IndexSpec, StoredRecord
from constellation.migration.legacy.layout import AppText, Layout
from constellation.migration.legacy.port import LayoutCheck, NoteKey
from constellation.migration.source import Note
from constellation.plan import Plan
from constellation.query import SearchResult, require_user
from constellation.services import Services

#: records per Chroma call (well under Chroma's maximum batch size)
CHUNK = 500


class ChromaLegacy:
    """The app's Chroma collection (embedded folder or server) in the plan's layout."""

    def __init__(self, plan: Plan, services: Services, *, write: bool = True) -> None:
        config = plan.legacy
        self.version = config.model_version
        self.model = plan.model(self.version).name
        self.dimension = plan.model(self.version).dimensions
        self.embedder = services.embedder(self.version)
        self.layout = Layout.from_config(config)
        self.text = AppText.from_config(config)
        url = config.url_value
        self.store = (
            ChromaStore(url=url, write=write) if url else ChromaStore(plan.legacy_path, write=write)
        )
        self.name = config.name
        #: no path or URL in the plan: the old index lives in Constellation's data folder
        self.in_data_dir = config.path is None and url is None
        self._errors = ChromaErrors(self.store.location, self.store.url)
        self._collection: Any = None
        self._metric = "cosine"

    # the collection ----------------------------------------------------------------------
    @property
    def collection(self) -> Any:
        if self._collection is None:
            with self._translated(f"open collection {self.name}"):
                try:
                    self._collection = self.store.collection(self.name)
                except IndexNotFound:
                    if not (self.layout.ours or self.in_data_dir):
                        raise LegacyError(
                            f"the app's collection {self.name} does not exist at "
                            f"{self.store.location}",
                            "check legacy.name and legacy.path (or legacy.url) in the plan",
                        ) from None
                    # Ours, or the embedded default's sample app in the data folder:
                    # created empty on first use.
                    self.store.create(IndexSpec(self.name, self.dimension, "cosine"))
                    self._collection = self.store.collection(self.name)
            self._metric = _metric(self._collection)
        return self._collection

    def create(self) -> None:
        """Create the collection, empty, if it does not exist: what a sample app does on its
        first day (the demo). Nothing else creates a collection in an app layout."""
        if not self.exists():
            with self._translated(f"create collection {self.name}"):
                self.store.create(IndexSpec(self.name, self.dimension, "cosine"))

    def exists(self) -> bool:
        """Whether the collection exists (nothing is created)."""
        try:
            return self.store.inspect(self.name) is not None
        except VectorIndexError as exc:
            raise LegacyError(f"the old system: {exc.message}", exc.hint) from exc

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            with self._errors.translated(doing):
                yield
        except LegacyError:
            raise
        except VectorIndexError as exc:
            raise LegacyError(
                f"the old system ({self.name}): {exc.message}",
                "check legacy.name, legacy.path or legacy.url in the plan",
            ) from exc

    # writes --------------------------------------------------------------------------------
    def write(self, note: Note) -> None:
        self.write_many([note])

    def write_many(self, notes: Sequence[Note]) -> None:
        """Embed in the caller and write straight into the collection: the app's old way."""
        latest = {(n.user_id, n.id): n for n in notes}  # one write per note: the last wins
        notes = self._newer(list(latest.values()))
        texts = self.text.prepare([n.content for n in notes], self.embedder)
        self.delete_many([(n.user_id, n.id) for n, t in zip(notes, texts, strict=True) if not t])
        keep = [(n, t) for n, t in zip(notes, texts, strict=True) if t]
        for start in range(0, len(keep), CHUNK):
            chunk = keep[start : start + CHUNK]
            vectors = self.embedder.embed([t for _, t in chunk])
            extra: dict[str, Any] = {}
            if self.layout.document:
                extra["documents"] = [n.content for n, _ in chunk]
            with self._translated(f"write {len(chunk)} notes"):
                self.collection.upsert(
                    ids=[self._id(n.user_id, n.id) for n, _ in chunk],
                    embeddings=[[float(x) for x in v] for v in vectors],
                    metadatas=[
                        self.layout.metadata(n, self.version, t, self.model) for n, t in chunk
                    ],
                    **extra,
                )

    def _newer(self, notes: list[Note]) -> list[Note]:
        """The notes not older than what the index holds for them. Only Constellation's own
        record format keeps the note's time (``created``); an app's layout keeps none, and
        there the order of the writes decides (the rollback's catch-up re-reads the source)."""
        if not self.layout.ours or not notes:
            return notes
        ids = [self._id(n.user_id, n.id) for n in notes]
        with self._translated("read the notes' times"):
            found = self.collection.get(ids=ids, include=["metadatas"])
        stored = {
            rid: meta.get("created")
            for rid, meta in zip(found["ids"], found["metadatas"] or [], strict=True)
            if meta
        }
        return [
            n
            for n, rid in zip(notes, ids, strict=True)
            if not isinstance(stored.get(rid), int | float) or n.edited >= stored[rid]
        ]

    def delete_many(self, keys: Sequence[NoteKey]) -> None:
        ids = [self._id(user, note) for user, note in keys]
        for start in range(0, len(ids), CHUNK):
            with self._translated("remove notes"):
                self.collection.delete(ids=ids[start : start + CHUNK])

    def _id(self, user_id: str, note_id: str) -> str:
        return self.layout.record_id(user_id, note_id, self.version)

    # reads ---------------------------------------------------------------------------------
    def search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The user's notes closest to ``text``, the query prepared as the app prepared notes."""
        require_user(user_id)
        (prepared,) = self.text.prepare([text], self.embedder)
        if not prepared:
            return []
        vector = [float(x) for x in remembered(self.embedder, [prepared])[0]]
        with self._translated("search"):
            found = read_retrying_transient(
                lambda: self.collection.query(
                    query_embeddings=[vector],
                    n_results=top_k,
                    where={self.layout.user_key: user_id},
                    include=["metadatas", "distances"],
                )
            )
        results = []
        ids = found["ids"][0] if found["ids"] else []
        for record_id, distance, meta in zip(
            ids, found["distances"][0], found["metadatas"][0], strict=True
        ):
            key = self.layout.note_of(record_id, meta or {})
            if key is None or key[0] != user_id:  # defence in depth: never another user's
                continue
            created = (meta or {}).get("created", 0)
            results.append(
                SearchResult(
                    note_id=key[1],
                    score=-float(distance) if self._metric == "l2" else 1.0 - float(distance),
                    created=int(created) if isinstance(created, int | float) else 0,
                    version=self.version,
                )
            )
        return sorted(results, key=lambda r: -r.score)

    def count(self) -> int:
        with self._translated("count records"):
            return int(self.collection.count())

    def scan(self, batch_size: int = 500) -> Iterator[StoredRecord]:
        """Every record of the collection with its vector (the phase 4 archive)."""
        return self._pages(batch_size, vectors=True)

    def _pages(self, batch_size: int, vectors: bool) -> Iterator[StoredRecord]:
        include = ["metadatas", "embeddings"] if vectors else ["metadatas"]
        offset = 0
        while True:
            with self._translated("read records"):
                page = self.collection.get(limit=batch_size, offset=offset, include=include)
            found = _records(page, vectors)
            yield from found
            if len(found) < batch_size:
                return
            offset += len(found)

    def get(self, user_id: str, note_id: str) -> StoredRecord | None:
        record_id = self._id(user_id, note_id)
        with self._translated("read a record"):
            page = self.collection.get(ids=[record_id], include=["metadatas", "embeddings"])
        found = _records(page, True)
        if not found or self.layout.note_of(found[0].id, found[0].metadata) != (user_id, note_id):
            return None  # another user's note under the same id: not this user's to see
        return found[0]

    def note_keys(self, batch_size: int = 500) -> Iterator[NoteKey]:
        for record in self._pages(batch_size, vectors=False):
            key = self.layout.note_of(record.id, record.metadata)
            if key is not None:
                yield key

    def check_layout(self, sample: int = 20) -> LayoutCheck:
        """Whether the first ``sample`` records fit the layout, naming what is missing."""
        if not self.exists():
            where = f"{self.name} at {self.store.location}"
            return LayoutCheck(0, self.layout.describe(), note=f"no collection {where} yet")
        with self._translated("read records"):
            page = self.collection.get(limit=sample, include=["metadatas"])
        problems = [
            problem
            for record in _records(page, False)
            for problem in self.layout.problems(record.id, record.metadata)
        ]
        return LayoutCheck(len(page["ids"]), self.layout.describe(), tuple(problems))

    def close(self) -> None:
        self._collection = None
        self.store.close()
