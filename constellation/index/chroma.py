"""Chroma adapters of the vector-index port: embedded (``PersistentClient``) or a server.

``ChromaStore(path=...)`` is the embedded default: one folder, written by one process at a time
(see :mod:`constellation.index.lock`). ``ChromaStore(url=...)`` talks to ``chroma run`` through
``HttpClient``; that is the set-up for several writing processes.

chromadb is imported inside the constructor, so importing this module (and ``constellation
--help``) stays cheap. Telemetry is off, and no collection ever gets an embedding function:
vectors are always passed in, so Chroma never loads or downloads a model.

The collection adapter, :class:`ChromaIndex`, lives in :mod:`.chroma_index` and is importable from
here too; turning chromadb's errors into ours is :mod:`.chroma_errors`.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from constellation.deadline import fetch
from constellation.errors import (
    DimensionMismatch,
    IndexNotFound,
    IndexUnreachable,
    VectorIndexError,
)
from constellation.index import lock
from constellation.index.chroma_errors import PROVISION_HINT, ChromaErrors
from constellation.index.chroma_index import ChromaIndex as ChromaIndex  # re-exported
from constellation.index.port import IndexInfo, IndexSpec, MetadataValue
from constellation.masking import location

_METRICS = ("cosine", "l2", "ip")
#: collection metadata Constellation keeps for itself; everything else is the manifest
_DIMENSION, _CREATED_BY, _FIELDS, _KEYED = "dimension", "created_by", "metadata_fields", "keyed"
_OWN = frozenset({_DIMENSION, _CREATED_BY, _FIELDS, _KEYED})


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
        self.location = str(self.path) if self.path is not None else location(str(self.url))
        self.write = write
        self._errors = ChromaErrors(self.location, self.url and self.location)
        self._lock: lock.FolderLock | None = None
        self._batch_limit: int | None = None
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
            # identical Settings for every store on a folder: Chroma shares one system per
            # folder within a process and refuses a second one with other settings
            settings = Settings(anonymized_telemetry=False, persist_directory=str(self.path))
            try:
                with self._errors.translated("open the embedded index"):
                    return chromadb.PersistentClient(path=str(self.path), settings=settings)
            except BaseException:
                _forget_system(settings)
                raise
        assert self.url is not None
        host, port, ssl = _parse_url(self.url)
        # chromadb's HTTP client waits forever (httpx with no timeout) and asks the server
        # before it returns: look first, within a total limit, then bound every request.
        self._answers_within(f"{'https' if ssl else 'http'}://{host}:{port}", CONNECT_DEADLINE)
        extra: dict[str, Any] = {}
        user, password = urlsplit(self.url).username, urlsplit(self.url).password
        if auth_token:
            extra = {
                "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": auth_token,
            }
        elif user and password:  # http://user:password@host: basic authentication
            extra = {
                "chroma_client_auth_provider": "chromadb.auth.basic_authn.BasicAuthClientProvider",
                "chroma_client_auth_credentials": f"{unquote(user)}:{unquote(password)}",
            }
        with self._errors.translated("connect"):
            settings = Settings(anonymized_telemetry=False, **extra)
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        _bound_requests(client)
        return client

    def _answers_within(self, base: str, deadline: float) -> None:
        """The server answers its heartbeat (any status) within ``deadline`` seconds."""
        try:
            fetch(f"{base}/api/v2/heartbeat", deadline=deadline)
        except (OSError, http.client.HTTPException) as exc:  # refused, timed out, garbage
            raise IndexUnreachable(
                f"Chroma server at {self.location} is unreachable ({exc})",
                "start it with `chroma run` or fix index.url in the plan",
            ) from exc
        except ValueError as exc:  # not an http(s) URL
            raise VectorIndexError(
                f"Chroma server at {self.location}: {exc}", "fix index.url in the plan"
            ) from exc

    def _require_client(self) -> Any:
        if self._absent:
            raise IndexNotFound(f"no index exists at {self.location} yet", PROVISION_HINT)
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
            _DIMENSION: spec.dimension,
            _CREATED_BY: "constellation",
            # every record written here carries the combined user-and-version key
            _KEYED: True,
            **spec.manifest,
        }
        if spec.metadata_fields:
            metadata[_FIELDS] = _format_fields(spec.metadata_fields)
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
                max_batch_size=self._max_batch_size(),
                errors=self._errors,
                keyed=(collection.metadata or {}).get(_KEYED) is True,
            )

    def manifest(self, name: str) -> dict[str, MetadataValue] | None:
        """The collection's manifest values (its metadata less Constellation's own keys)."""
        if self._absent:
            return None
        from chromadb.errors import NotFoundError

        client = self._require_client()
        with self._errors.translated(f"read the manifest of index {name}"):
            try:
                collection = client.get_collection(name, embedding_function=None)
            except NotFoundError:
                return None
        return _manifest(collection.metadata)

    def set_manifest(self, name: str, values: Mapping[str, MetadataValue]) -> None:
        """Replace the collection's manifest values, keeping dimension, fields and key flag."""
        client = self._require_client()
        with self._errors.translated(f"update the manifest of index {name}", index=name):
            collection = client.get_collection(name, embedding_function=None)
            own = {k: v for k, v in (collection.metadata or {}).items() if k in _OWN}
            collection.modify(metadata={**own, **values})

    def _max_batch_size(self) -> int:
        # asked once: on a server every call is a round trip, and partitions open many indexes
        if self._batch_limit is None:
            self._batch_limit = int(self._require_client().get_max_batch_size())
        return self._batch_limit

    def collection(self, name: str) -> Any:
        """The chromadb collection itself, for a collection Constellation did not create and
        does not own (an app's old index); :class:`IndexNotFound` when it does not exist."""
        from chromadb.errors import NotFoundError

        client = self._require_client()
        with self._errors.translated(f"open collection {name}"):
            try:
                return client.get_collection(name, embedding_function=None)
            except NotFoundError:
                raise IndexNotFound(
                    f"there is no collection {name} at {self.location}",
                    "check the collection's name and location in the plan",
                ) from None

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
        fields = (collection.metadata or {}).get(_FIELDS)
        return IndexInfo(
            name=collection.name,
            dimension=_dimension(collection),
            metric=_metric(collection),
            count=collection.count(),
            metadata_fields=_parse_fields(fields) if isinstance(fields, str) else {},
            location=self.location,
            id=str(collection.id),
            manifest=_manifest(collection.metadata),
        )


def _forget_system(settings: Any) -> None:
    """Drop the folder's system that a failed open left in chromadb's per-process cache.

    chromadb caches a folder's system before starting it; when the start fails (a damaged
    chroma.sqlite3), every later open in the process gets that half-made system and fails with
    "'RustBindingsAPI' object has no attribute 'bindings'", which names nothing. Forgotten, the
    next open tries the folder again and names its damage again (a worker's retry, a command's
    second look). Reaches into chromadb's client cache, so it checks what it finds.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    systems = getattr(SharedSystemClient, "_identifier_to_system", None)
    if isinstance(systems, dict):
        systems.pop(SharedSystemClient._get_identifier_from_settings(settings), None)


#: seconds the server has to answer its heartbeat when a store opens
CONNECT_DEADLINE = 10.0
#: httpx timeouts of every later request: connecting, and each read or write of a request
#: (an upsert or a query that takes longer means the server is stuck, not busy)
REQUEST_TIMEOUTS = {"connect": 10.0, "read": 60.0, "write": 60.0, "pool": 60.0}


def _bound_requests(client: Any) -> None:
    """Give chromadb's HTTP session timeouts (it is created with none: a hung server would
    hold a worker forever). Reaches into chromadb's client, so it checks what it finds."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(**REQUEST_TIMEOUTS)


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


def _dimension(collection: Any) -> int | None:
    """The dimension Constellation recorded, else the one Chroma learnt from the first vector."""
    recorded = (collection.metadata or {}).get(_DIMENSION)
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


def _manifest(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    return {
        k: v
        for k, v in (metadata or {}).items()
        if k not in _OWN and not k.startswith("hnsw:") and isinstance(v, str | int | float | bool)
    }


def _format_fields(fields: Mapping[str, str]) -> str:
    return ",".join(f"{name}:{kind}" for name, kind in fields.items())


def _parse_fields(text: str) -> dict[str, str]:
    pairs = (item.partition(":") for item in text.split(",") if item)
    return {name: kind for name, _, kind in pairs}
