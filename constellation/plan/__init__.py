"""Plans: YAML files loaded into frozen, validated models.

One function, :func:`load_plan`, reads a plan (see :mod:`constellation.plan.reader` for lines,
``${VAR}`` interpolation and ``--env`` overrides), resolves relative paths against the plan
file's folder, and validates it. Every problem is reported at once, each naming the file, the
line and the field path. Unknown keys are errors, with the closest known key suggested.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from constellation.errors import PlanError, PlanIssue, UnknownVersion
from constellation.masking import masked
from constellation.plan import adapters
from constellation.plan.checks import CapacityConfig, QualityConfig, RecallConfig
from constellation.plan.fields import PlanPath, Section, parse_duration
from constellation.plan.migration import (
    SOURCE_FIELDS,
    ConsistencyConfig,
    LegacyConfig,
    MigrationConfig,
    SourceConfig,
    TrafficConfig,
)
from constellation.plan.monitoring import DEFAULT_ALERTS, AlertRule, Metric, MonitoringConfig
from constellation.plan.provider import ProviderConfig
from constellation.plan.reader import FieldPath, PlanSource, read_plan_file
from constellation.plan.service import (
    DEFAULT_METADATA,
    DEFAULT_MODELS,
    ConsumerConfig,
    IndexConfig,
    MetadataType,
    ModelConfig,
    QueueConfig,
)
from constellation.plan.serving import ApiToken, ServiceConfig

__all__ = [
    "DEFAULT_ALERTS",
    "DEFAULT_METADATA",
    "DEFAULT_PLAN",
    "SOURCE_FIELDS",
    "AlertRule",
    "ApiToken",
    "CapacityConfig",
    "ConsistencyConfig",
    "ConsumerConfig",
    "IndexConfig",
    "LegacyConfig",
    "MetadataType",
    "Metric",
    "MigrationConfig",
    "ModelConfig",
    "MonitoringConfig",
    "Plan",
    "ProviderConfig",
    "QualityConfig",
    "QueueConfig",
    "RecallConfig",
    "ServiceConfig",
    "SourceConfig",
    "TrafficConfig",
    "load_plan",
    "parse_duration",
]

DEFAULT_PLAN = Path("plans/local.yaml")


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
    #: the HTTP service: tokens and limits
    service: ServiceConfig = ServiceConfig()
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
    def index_location(self) -> str:
        """Where the index is: its server's URL, or its folder."""
        return self.index.url or str(self.index_path)

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

    def declared(self, versions: Sequence[int], field: str = "versions") -> tuple[int, ...]:
        """``versions`` when the plan declares every one; else :class:`UnknownVersion` naming
        the first that it does not (and ``field``, the option or body field that asked)."""
        for version in versions:
            if version not in self.models:
                raise UnknownVersion(version, self.models, field=field)
        return tuple(versions)

    def redacted(self) -> dict[str, Any]:
        """The resolved plan as JSON-ready data, with secrets and URL passwords masked."""
        return _mask_urls(self.model_dump(mode="json", by_alias=True))


def _mask_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    if isinstance(value, str):
        return masked(value)
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
