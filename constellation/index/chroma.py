"""Chroma adapters of the vector-index port: embedded (``PersistentClient``) or a server.

``ChromaStore(path=...)`` is the embedded default: one folder, written by one process at a time
(see :mod:`constellation.index.lock`). ``ChromaStore(url=...)`` talks to ``chroma run`` through
``HttpClient``; that is the set-up for several writing processes.

chromadb is imported inside the constructor, so importing this module (and ``constellation
--help``) stays cheap. Telemetry is off, and no collection ever gets an embedding function:
vectors are always passed in, so Chroma never loads or downloads a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from constellation.errors import (
    ConstellationError,
    DimensionMismatch,
    IndexNotFound,
    VectorIndexError,
)
from constellation.index import lock
from constellation.index.port import (
    Hit,
    IndexInfo,
    IndexSpec,
    MetadataValue,
    StoredRecord,
    Vector,
    VectorRecord,
)

# Record metadata keys every query filters on (DESIGN.md, "Vector record").
_USER = "userId"
_VERSION = "version"
_METRICS = ("cosine", "l2", "ip")
_PROVISION_HINT = "run `constellation provision` first"


class _Errors:
    """Turns whatever chromadb raises into our errors, with the next step to take."""

    def __init__(self, location: str, url: str | None) -> None:
        self.location = location
        self.url = url

    @contextmanager
    def translated(self, doing: str, index: str | None = None) -> Iterator[None]:
        """Re-raise a chromadb (or HTTP) failure while ``doing`` as a :class:`VectorIndexError`."""
        try:
            yield
        except ConstellationError:
            raise
        except Exception as exc:
            raise self.convert(exc, doing, index) from exc

    def convert(self, exc: Exception, doing: str, index: str | None) -> VectorIndexError:
        import httpx
        from chromadb import errors as chroma_errors

        detail = str(exc) or type(exc).__name__
        if self.url and (isinstance(exc, httpx.TransportError) or "Could not connect" in detail):
            return VectorIndexError(
                f"Chroma server at {self.url} is unreachable ({detail})",
                "start it with `chroma run` or fix index.url in the plan",
            )
        if isinstance(exc, chroma_errors.ChromaAuthError | chroma_errors.AuthorizationError):
            return VectorIndexError(
                f"Chroma server at {self.url} refused the credentials while trying to {doing}",
                "check index.auth_token in the plan",
            )
        if isinstance(exc, chroma_errors.NotFoundError) and index is not None:
            return IndexNotFound(
                f"index {index} does not exist at {self.location}", _PROVISION_HINT
            )
        if "dimension" in detail.lower():
            return DimensionMismatch(
                f"Chroma refused to {doing}: {detail}",
                "the plan's model dimension must match the index; re-provision or fix the plan",
            )
        where = (
            "the Chroma server's log" if self.url else f"that {self.location} is a Chroma folder"
        )
        return VectorIndexError(
            f"Chroma failed to {doing} at {self.location}: {detail}", f"check {where}"
        )


class ChromaStore:
    """Creates, inspects and opens Chroma collections, embedded or on a server.

    Give exactly one of ``path`` (embedded) or ``url`` (a server such as
    ``http://127.0.0.1:8000``). An embedded store opened with ``write=True`` holds the folder's
    writer lock until :meth:`close`; ``write=False`` is for reading (describe, query) from a
    process that does not write, and takes no lock.
    """

    def __init__(
        self,
        path: Path | None = None,
        url: str | None = None,
        auth_token: str | None = None,
        write: bool = True,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("ChromaStore needs exactly one of path (embedded) or url (server)")
        self.path = Path(path).resolve() if path is not None else None
        self.url = url.rstrip("/") if url is not None else None
        self.location = str(self.path) if self.path is not None else str(self.url)
        self.write = write
        self._errors = _Errors(self.location, self.url)
        self._lock: lock.FolderLock | None = None
        if self.path is not None and write:
            self._lock = lock.acquire(self.path)
        # A read-only look at a folder that does not exist must not create it (dry runs,
        # describe before provision): such a store simply has no indexes.
        self._absent = self.path is not None and not write and not self.path.exists()
        try:
            self._client: Any = None if self._absent else self._connect(auth_token)
        except BaseException:
            self._release_lock()
            raise

    def _connect(self, auth_token: str | None) -> Any:
        import chromadb
        from chromadb.config import Settings

        if self.path is not None:
            with self._errors.translated("open the embedded index"):
                # identical Settings for every store on a folder: Chroma shares one system per
                # folder within a process and refuses a second one with other settings
                settings = Settings(anonymized_telemetry=False)
                return chromadb.PersistentClient(path=str(self.path), settings=settings)
        assert self.url is not None
        host, port, ssl = _parse_url(self.url)
        extra: dict[str, Any] = {}
        if auth_token:
            extra = {
                "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": auth_token,
            }
        with self._errors.translated("connect"):
            settings = Settings(anonymized_telemetry=False, **extra)
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)

    def _require_client(self) -> Any:
        if self._absent:
            raise IndexNotFound(f"no index exists at {self.location} yet", _PROVISION_HINT)
        if self._client is None:
            raise VectorIndexError(f"the index store at {self.location} is closed")
        return self._client

    def inspect(self, name: str) -> IndexInfo | None:
        """The index named ``name``, or None when it does not exist."""
        if self._absent:
            return None
        from chromadb.errors import NotFoundError

        client = self._require_client()
        with self._errors.translated(f"inspect index {name}"):
            try:
                collection = client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
            return self._info(collection)

    def create(self, spec: IndexSpec) -> IndexInfo:
        """Create a collection with the spec's metric, recording dimension and metadata fields."""
        if spec.metric not in _METRICS:
            raise VectorIndexError(
                f"index {spec.name}: unknown metric {spec.metric!r}",
                f"choose one of: {', '.join(_METRICS)}",
            )
        if spec.dimension < 1:
            raise DimensionMismatch(f"index {spec.name}: dimension must be positive")
        client = self._require_client()
        if self.inspect(spec.name) is not None:
            raise VectorIndexError(
                f"index {spec.name} already exists at {self.location}",
                "inspect it with `constellation describe`, or delete it before creating it again",
            )
        metadata: dict[str, MetadataValue] = {
            "dimension": spec.dimension,
            "created_by": "constellation",
        }
        if spec.metadata_fields:
            metadata["metadata_fields"] = _format_fields(spec.metadata_fields)
        with self._errors.translated(f"create index {spec.name}"):
            collection = client.create_collection(
                spec.name,
                configuration={"hnsw": {"space": spec.metric}},
                metadata=metadata,
                embedding_function=None,
            )
            return self._info(collection)

    def delete_index(self, name: str) -> None:
        """Delete an index and its records (a missing one is ignored)."""
        from chromadb.errors import NotFoundError

        client = self._require_client()
        with self._errors.translated(f"delete index {name}"), suppress(NotFoundError):
            client.delete_collection(name)

    def open(self, name: str) -> ChromaIndex:
        """Open an existing index; :class:`IndexNotFound` says to provision it first."""
        client = self._require_client()
        with self._errors.translated(f"open index {name}", index=name):
            collection = client.get_collection(name, embedding_function=None)
            return ChromaIndex(
                collection,
                dimension=_dimension(collection) or 0,
                metric=_metric(collection),
                max_batch_size=client.get_max_batch_size(),
                errors=self._errors,
            )

    def close(self) -> None:
        """Close the client and release the folder lock (idempotent)."""
        client, self._client = self._client, None
        try:
            if client is not None and hasattr(client, "close"):
                with self._errors.translated("close the index store"):
                    client.close()
            if client is not None and self.url is not None:
                _close_http_session(client)
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        held, self._lock = self._lock, None
        if held is not None:
            held.release()

    def __enter__(self) -> ChromaStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _info(self, collection: Any) -> IndexInfo:
        fields = (collection.metadata or {}).get("metadata_fields")
        return IndexInfo(
            name=collection.name,
            dimension=_dimension(collection),
            metric=_metric(collection),
            count=collection.count(),
            metadata_fields=_parse_fields(fields) if isinstance(fields, str) else {},
            location=self.location,
        )


class ChromaIndex:
    """One Chroma collection behind the :class:`~constellation.index.port.VectorIndex` port.

    ``dimension`` is 0 only for a collection that Constellation did not create and that holds no
    vector yet; the first upsert then fixes it.
    """

    def __init__(
        self, collection: Any, *, dimension: int, metric: str, max_batch_size: int, errors: _Errors
    ) -> None:
        self._collection = collection
        self.name: str = collection.name
        self.dimension = dimension
        self.metric = metric
        self._max_batch_size = max(1, max_batch_size)
        self._errors = errors

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
                    metadatas=[dict(latest[id_].metadata) for id_ in chunk],
                )
        if not self.dimension:
            self.dimension = len(next(iter(vectors.values())))

    def get(self, ids: Sequence[str], include_vectors: bool = False) -> dict[str, StoredRecord]:
        """The stored records among ``ids`` (missing ids are simply absent)."""
        if not ids:
            return {}
        with self._errors.translated(f"get records from {self.name}", self.name):
            result = _read(
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
            result = _read(
                lambda: self._collection.query(
                    query_embeddings=[embedding],
                    n_results=top_k,
                    where=_where(user_id=user_id, version=version),
                    include=["metadatas", "distances"],
                )
            )
        ids = result["ids"][0] if result["ids"] else []
        distances = result["distances"][0] if result.get("distances") else []
        metadatas = result["metadatas"][0] if result.get("metadatas") else [None] * len(ids)
        hits = [
            Hit(id=id_, score=self._score(float(distance)), metadata=dict(meta or {}))
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
        where = _where(user_id=user_id, version=version)
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

    def _checked(self, vector: Vector, what: str) -> list[float]:
        """``vector`` as a list of floats, refused when its length is not the index's."""
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


#: a read on a freshly created collection can fail while Chroma has not yet written its HNSW
#: segment to disk (chroma-core/chroma#4212); it succeeds moments later
_TRANSIENT = "Nothing found on disk"


def _read(call: Callable[[], Any], attempts: int = 4) -> Any:
    """Run a read, retrying Chroma's known transient segment error with a short backoff."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if _TRANSIENT not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 3**attempt)
    raise AssertionError("unreachable")


def _parse_url(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of ``http(s)://host[:port]``; Chroma's port 8000 when none is given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise VectorIndexError(
            f"index.url {url!r} is not a Chroma server address",
            "write it as http://host:port, for example http://127.0.0.1:8000",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise VectorIndexError(f"index.url {url!r} has an invalid port") from exc
    ssl = parts.scheme == "https"
    return parts.hostname, port or (443 if ssl else 8000), ssl


def _close_http_session(client: Any) -> None:
    """Close the HTTP connection pools of the client and of its internal admin client.

    chromadb 1.5's ``close()`` stops its systems but leaves their httpx sessions (and sockets to
    the server) open; a process that opens stores repeatedly would leak connections.
    """
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if session is not None and callable(getattr(session, "close", None)):
            session.close()


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
            metadata=dict(meta or {}),
            vector=[float(x) for x in vector] if vector is not None else None,
        )
        for id_, meta, vector in zip(ids, metadatas, embeddings, strict=True)
    ]


def _dimension(collection: Any) -> int | None:
    """The dimension Constellation recorded, else the one Chroma learnt from the first vector."""
    recorded = (collection.metadata or {}).get("dimension")
    if isinstance(recorded, int | float) and not isinstance(recorded, bool) and recorded > 0:
        return int(recorded)
    learnt = getattr(collection.get_model(), "dimension", None)
    return int(learnt) if learnt else None


def _metric(collection: Any) -> str:
    """The collection's distance space (hnsw or spann configuration; Chroma's default is l2)."""
    config = collection.configuration_json or {}
    for section in ("hnsw", "spann"):
        space = (config.get(section) or {}).get("space")
        if space:
            return str(space)
    legacy = (collection.metadata or {}).get("hnsw:space")
    return str(legacy) if legacy else "l2"


def _format_fields(fields: Mapping[str, str]) -> str:
    return ",".join(f"{name}:{kind}" for name, kind in fields.items())


def _parse_fields(text: str) -> dict[str, str]:
    pairs = (item.partition(":") for item in text.split(",") if item)
    return {name: kind for name, _, kind in pairs}
