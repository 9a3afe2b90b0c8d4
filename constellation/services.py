"""The outside systems of one plan, opened on first use and closed together.

This is the only place that turns a plan's adapter names into adapter objects, so commands,
the worker, the client and the migration all get the same wiring. Nothing here imports boto3,
chromadb or torch until an adapter is first used.
"""

from __future__ import annotations

import functools
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from constellation.plan import adapters

if TYPE_CHECKING:
    from constellation.embedders.port import Embedder, Loading, Upstream
    from constellation.index.partitioned import PartitionedStore
    from constellation.index.port import VectorIndex
    from constellation.plan import Plan
    from constellation.queues.port import Broker, Queue


class Services:
    """Adapters for ``plan``. ``write=False`` opens the embedded index without its writer lock
    (for read-only commands such as ``describe`` and ``query`` beside a running worker)."""

    def __init__(
        self,
        plan: Plan,
        *,
        write: bool = True,
        embedders: dict[int, Embedder] | None = None,
        loading: Loading | None = None,
    ) -> None:
        self.plan = plan
        self.write = write
        #: around each model's first load (the CLI's spinner)
        self.loading = loading
        #: models by version; given ones (tests, benchmarks) replace the plan's
        self._embedders: dict[int, Embedder] = dict(embedders or {})
        self._indexes: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()

    # queues ----------------------------------------------------------------------------------
    @cached_property
    def broker(self) -> Broker:
        config = self.plan.queue
        cls = adapters.load("queue", config.adapter)
        if config.adapter == "sqlite":
            return cls(self.plan.queue_path)
        pool = 2 * self.plan.consumer.max_concurrency + 4
        return cls(
            endpoint_url=config.endpoint_url, region=config.region, max_pool_connections=pool
        )

    @cached_property
    def queue(self) -> Queue:
        return self.broker.open(self.plan.queue.name)

    @cached_property
    def dead_letter(self) -> Queue:
        return self.broker.open(self.plan.queue.dead_letter)

    # vector index ----------------------------------------------------------------------------
    @cached_property
    def store(self) -> PartitionedStore:
        """The plan's index store, its indexes split into partitions by user."""
        from constellation import records
        from constellation.index.partitioned import PartitionedStore

        config = self.plan.index
        cls = adapters.load("index", config.adapter)
        token = config.auth_token.get_secret_value() if config.auth_token else None
        if config.url:
            inner = cls(url=config.url, auth_token=token, write=self.write)
        else:
            inner = cls(path=self.plan.index_path, write=self.write)
        return PartitionedStore(inner, config.partitions, user_of_id=records.user_of)

    def index(self, version: int | None = None) -> VectorIndex:
        """The index holding ``version``'s vectors (the plan's default version when None)."""
        name = self.plan.index_name_for(self.plan.default_version if version is None else version)
        with self._lock:
            if name not in self._indexes:
                self._indexes[name] = self.store.open(name)
            return self._indexes[name]

    # embedders -------------------------------------------------------------------------------
    def embedder(self, version: int | None = None) -> Embedder:
        """The model of ``version``, loaded on first use and shared afterwards."""
        version = self.plan.default_version if version is None else version
        with self._lock:
            if version not in self._embedders:
                self._embedders[version] = build_embedder(self.plan, version, self.loading)
            return self._embedders[version]

    def query_embedder(self, version: int | None = None) -> Embedder:
        """The model of ``version`` for searches: the same one, but a provider over HTTP
        answers a search within its ``query_deadline``, not the worker's ``deadline``."""
        from constellation.embedders.port import Upstream

        embedder = self.embedder(version)
        return embedder.for_queries() if isinstance(embedder, Upstream) else embedder

    def upstreams(self) -> list[Upstream]:
        """The plan's embedding providers over HTTP (the worker stops receiving while one
        is unavailable)."""
        from constellation.embedders.port import Upstream

        found: list[Upstream] = []
        for version, model in sorted(self.plan.models.items()):
            if model.backend == "http":
                embedder = self.embedder(version)
                if isinstance(embedder, Upstream) and embedder not in found:
                    found.append(embedder)
        return found

    def close(self) -> None:
        """Release connections and locks (the embedded index's writer lock among them)."""
        from constellation.embedders.port import Upstream
        from constellation.embedders.processes import ModelProcesses

        for embedder in self._embedders.values():
            if isinstance(embedder, Upstream | ModelProcesses):
                embedder.close()  # a provider's connections, or the model's own processes
        for name in ("broker", "store"):
            resource: Any = self.__dict__.pop(name, None)
            if resource is not None:
                resource.close()
        self.__dict__.pop("queue", None)
        self.__dict__.pop("dead_letter", None)
        self._indexes.clear()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_embedder(plan: Plan, version: int, loading: Loading | None = None) -> Embedder:
    """An embedder for one model version of the plan (not loaded until it first embeds);
    ``loading`` runs around its first load (the CLI's spinner)."""
    model = plan.model(version)
    cls = adapters.load("embedder", model.backend)
    if model.backend == "http":  # a provider: no package, folder or threads of ours
        return cls(
            model.name,
            provider=model.provider,
            dimensions=model.dimensions,
            normalize=model.normalize,
            plan_field=f"models.{version}",
        )
    if model.processes:
        from constellation.embedders.processes import ModelProcesses

        inner = model.model_copy(update={"processes": 0, "streams": model.processes})
        alone = plan.model_copy(update={"models": {**plan.models, version: inner}})
        return ModelProcesses(
            functools.partial(build_embedder, alone, version),
            model_id=model.name,
            dimension=model.dimensions,
            processes=model.processes,
            loading=loading,
        )
    extra: dict[str, Any] = {"encode_batch_size": model.encode_batch_size}
    if loading is not None:
        extra["loading"] = loading
    if model.backend == "onnx":  # exported once, then cached in the data folder
        del extra["encode_batch_size"]
        extra.update(quantize=model.quantize, cache_dir=plan.data_dir / "models")
    return cls(
        model.name,
        package=model.package,
        path=model.path,
        dimensions=model.dimensions,
        normalize=model.normalize,
        streams=model.streams,
        **extra,
    )
