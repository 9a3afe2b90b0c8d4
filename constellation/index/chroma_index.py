"""One Chroma collection behind the vector-index port, with its filters and record conversion.

Open one with :meth:`constellation.index.chroma.ChromaStore.open`. Nothing here imports chromadb:
the collection object comes from the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from constellation.errors import DimensionMismatch
from constellation.index.chroma_errors import ChromaErrors, read_retrying_transient
from constellation.index.port import Hit, StoredRecord, Vector, VectorRecord

# Record metadata keys every query filters on (DESIGN.md, "Vector record").
_USER = "userId"
_VERSION = "version"
#: one string key for "this user, this version": Chroma evaluates an ``$and`` of the userId
#: with the (numeric) version many times slower than one string equality (70 ms against 3 ms
#: on a partition of 1,500 records; ``benchmarks/query_scale.py``)
USER_VERSION = "userVersion"


def user_version(user_id: str, version: int) -> str:
    """The combined key; the version goes first, so the split at the first ``:`` is unique."""
    return f"{version}:{user_id}"


class ChromaIndex:
    """One Chroma collection behind the :class:`~constellation.index.port.VectorIndex` port.

    ``dimension`` is 0 only for a collection that Constellation did not create and that holds no
    vector yet; the first upsert then fixes it.
    """

    def __init__(
        self,
        collection: Any,
        *,
        dimension: int,
        metric: str,
        max_batch_size: int,
        errors: ChromaErrors,
        keyed: bool = True,
    ) -> None:
        self._collection = collection
        self.name: str = collection.name
        self.dimension = dimension
        self.metric = metric
        self._max_batch_size = max(1, max_batch_size)
        self._errors = errors
        #: whether every record here carries :data:`USER_VERSION` (collections created before
        #: the key existed do not, and are filtered with ``$and`` until ``index migrate``)
        self.keyed = keyed

    def upsert(self, records: Sequence[VectorRecord]) -> None:
        """Insert or replace records by id; vectors of another dimension are refused first.

        One Chroma call, split only above Chroma's maximum batch size. When one id appears
        twice, the later record wins, as two upserts in a row would.
        """
        latest = {record.id: record for record in records}
        if not latest:
            return
        vectors = {id_: self._checked(record.vector, id_) for id_, record in latest.items()}
        ids = list(latest)
        for start in range(0, len(ids), self._max_batch_size):
            chunk = ids[start : start + self._max_batch_size]
            with self._errors.translated(
                f"upsert {len(chunk)} records into {self.name}", self.name
            ):
                self._collection.upsert(
                    ids=chunk,
                    embeddings=[vectors[id_] for id_ in chunk],
                    metadatas=[_with_key(latest[id_].metadata) for id_ in chunk],
                )
        if not self.dimension:
            self.dimension = len(next(iter(vectors.values())))

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        """The stored records among ``ids`` (missing ids are simply absent)."""
        if not ids:
            return {}
        with self._errors.translated(f"get records from {self.name}", self.name):
            result = read_retrying_transient(
                lambda: self._collection.get(ids=list(ids), include=_include(include_vectors))
            )
        return {record.id: record for record in _records(result, include_vectors)}

    def query(
        self, vector: Vector, *, user_id: str, top_k: int = 10, version: int | None = None
    ) -> list[Hit]:
        """The ``top_k`` records of ``user_id`` nearest to ``vector``, best first.

        The user filter is not optional: there is no way to search across users.
        """
        if not user_id:
            raise ValueError("query needs a user_id: searches are always filtered by user")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        embedding = self._checked(vector, "the query vector")
        with self._errors.translated(f"query {self.name}", self.name):
            result = read_retrying_transient(
                lambda: self._collection.query(
                    query_embeddings=[embedding],
                    n_results=top_k,
                    where=self._where(user_id=user_id, version=version),
                    include=["metadatas", "distances"],
                )
            )
        ids = result["ids"][0] if result["ids"] else []
        distances = result["distances"][0] if result.get("distances") else []
        metadatas = result["metadatas"][0] if result.get("metadatas") else [None] * len(ids)
        hits = [
            Hit(id=id_, score=self._score(float(distance)), metadata=_without_key(meta))
            for id_, distance, meta in zip(ids, distances, metadatas, strict=True)
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (missing ids are ignored)."""
        if not ids:
            return
        with self._errors.translated(f"delete records from {self.name}", self.name):
            self._collection.delete(ids=list(ids))

    def count(self, *, version: int | None = None, user_id: str | None = None) -> int:
        """How many records (optionally of one version and/or one user)."""
        where = self._where(user_id=user_id, version=version)
        with self._errors.translated(f"count records in {self.name}", self.name):
            if where is None:
                return int(self._collection.count())
            return len(self._collection.get(where=where, include=[])["ids"])

    def scan(
        self, batch_size: int = 500, include_vectors: bool = False, version: int | None = None
    ) -> Iterator[StoredRecord]:
        """Every record (optionally of one version), in pages of ``batch_size``.

        Pages are read by offset, so records deleted or added during a scan may shift a page.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        where = _where(version=version)
        offset = 0
        while True:
            with self._errors.translated(f"scan {self.name}", self.name):
                result = self._collection.get(
                    where=where, limit=batch_size, offset=offset, include=_include(include_vectors)
                )
            page = _records(result, include_vectors)
            yield from page
            if len(page) < batch_size:
                return
            offset += len(page)

    def search_filter(self, user_id: str, version: int | None = None) -> str:
        """The collection a search reads and its ``where`` filter, as Chroma is sent it."""
        where = self._where(user_id=user_id, version=version) or {}
        conditions = where.get("$and", [where])
        said = " and ".join(
            f"{key} = {json.dumps(value, ensure_ascii=False)}"
            for condition in conditions
            for key, value in condition.items()
        )
        return f"collection {self.name}, where {said}"

    def _where(self, *, user_id: str | None, version: int | None) -> dict[str, Any] | None:
        if self.keyed and user_id is not None and version is not None:
            return {USER_VERSION: user_version(user_id, version)}
        return _where(user_id=user_id, version=version)

    def _checked(self, vector: Vector, what: str) -> Any:
        """``vector`` as Chroma takes it (a float32 array as it is, else a list of floats),
        refused when its length is not the index's."""
        if getattr(vector, "ndim", None) == 1 and str(getattr(vector, "dtype", "")) == "float32":
            values: Any = vector  # the embedders' own output: no copy, no Python loop
        else:
            values = [float(x) for x in vector]
        if self.dimension and len(values) != self.dimension:
            raise DimensionMismatch(
                f"index {self.name} holds {self.dimension}-dimensional vectors, "
                f"but {what} has {len(values)}",
                "embed with the model the index was provisioned for, or re-provision the index",
            )
        return values

    def _score(self, distance: float) -> float:
        # Chroma's cosine distance is 1 - cosine similarity and its ip distance is 1 - dot
        # product, so 1 - distance is the similarity itself; for (squared) l2 the negated
        # distance keeps "higher is closer".
        return -distance if self.metric == "l2" else 1.0 - distance


def _where(*, user_id: str | None = None, version: int | None = None) -> dict[str, Any] | None:
    """A Chroma ``where`` filter; Chroma wants ``$and`` around more than one condition."""
    conditions: list[dict[str, Any]] = []
    if user_id is not None:
        conditions.append({_USER: user_id})
    if version is not None:
        conditions.append({_VERSION: version})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _with_key(metadata: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(metadata)
    user, version = values.get(_USER), values.get(_VERSION)
    if isinstance(user, str) and isinstance(version, int) and not isinstance(version, bool):
        values[USER_VERSION] = user_version(user, version)
    return values


def _without_key(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(metadata or {})
    values.pop(USER_VERSION, None)
    return values


def _include(include_vectors: bool) -> list[str]:
    return ["metadatas", "embeddings"] if include_vectors else ["metadatas"]


def _records(result: Mapping[str, Any], include_vectors: bool) -> list[StoredRecord]:
    ids = result["ids"]
    metadatas = result.get("metadatas") or [None] * len(ids)
    embeddings = result.get("embeddings") if include_vectors else None
    if embeddings is None:
        embeddings = [None] * len(ids)
    return [
        StoredRecord(
            id=id_,
            metadata=_without_key(meta),
            vector=[float(x) for x in vector] if vector is not None else None,
        )
        for id_, meta, vector in zip(ids, metadatas, embeddings, strict=True)
    ]
