"""Plan sections of the migration: notes source, old system, consistency, traffic steps, state."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from constellation.plan.checks import CapacityConfig, QualityConfig, RecallConfig
from constellation.plan.fields import (
    Duration,
    Fraction,
    OptSecret,
    OptStr,
    PlanPath,
    Section,
    adapter_name,
)

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


#: the fields a Chroma record id template may name
LAYOUT_FIELDS = ("userId", "noteId")
CHROMA_LAYOUT = frozenset({"id", "user_key", "note_key", "document"})
PGVECTOR_LAYOUT = frozenset({"table", "id_column", "user_column", "vector_column"})
_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")


class LegacyLayout(Section):
    """How the app laid out its old index: record ids and metadata keys (Chroma), or the table
    and columns (pgvector). Absent from the plan: Constellation's own record format."""

    #: Chroma: how the app built record ids, from ``{userId}`` and ``{noteId}``
    id: str = "{noteId}"
    #: Chroma: the metadata key that holds the user id
    user_key: str = Field("userId", min_length=1)
    #: Chroma: the metadata key that holds the note id; null: read it from the record id
    note_key: OptStr = None
    #: Chroma: whether the app keeps the note's text as the record's document
    document: bool = False
    #: pgvector: the table of the app's embeddings (``schema.table`` allowed)
    table: str = Field("note_embeddings", min_length=1)
    #: pgvector: its columns: the note id (unique), the user id and the vector
    id_column: str = Field("id", min_length=1)
    user_column: str = Field("user_id", min_length=1)
    vector_column: str = Field("embedding", min_length=1)

    @field_validator("id")
    @classmethod
    def _template(cls, template: str) -> str:
        names = _TEMPLATE_FIELD.findall(template)
        unknown = sorted(set(names) - set(LAYOUT_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join('{' + n + '}' for n in unknown)} in the id "
                f"template; use {{userId}} and {{noteId}}"
            )
        if "noteId" not in names:
            raise ValueError("the id template must contain {noteId}")
        if len(names) != len(set(names)):
            raise ValueError("the id template names a field twice")
        return template

    @model_validator(mode="after")
    def _readable(self) -> LegacyLayout:
        joined = "{userId}{noteId}" in self.id or "{noteId}{userId}" in self.id
        if self.note_key is None and joined:
            raise ValueError("with note_key null the id template needs text between its fields")
        return self


class LegacyPreprocess(Section):
    """How the app prepared a note's text before embedding it inline."""

    #: ours: Unicode NFC, control characters removed, whitespace collapsed, cut in model tokens
    normalize: bool = True
    #: cut the text after this many characters (the model cuts what is still too long)
    max_chars: int | None = Field(None, ge=1)


class LegacyConfig(Section):
    """The old system: the app's Chroma collection or pgvector table (filled inline), or the
    operator's own ``module:object``."""

    adapter: Annotated[str, adapter_name("legacy")] = "chroma"
    #: Chroma: the app's collection
    name: str = "notes-legacy"
    #: embedded Chroma folder (default: <data_dir>/legacy)
    path: PlanPath | None = None
    #: a Chroma server (http://host:port), or for pgvector the app's database (SQLAlchemy URL)
    url: OptSecret = None
    #: the model version the old system embeds with
    model_version: int = 1
    #: the app's layout; absent: Constellation's records (ids user:note:vN, our metadata)
    layout: LegacyLayout | None = None
    #: the app's own text preparation; absent: the same as the new system's
    preprocess: LegacyPreprocess = LegacyPreprocess()

    @model_validator(mode="after")
    def _pgvector(self) -> LegacyConfig:
        given = self.layout.model_fields_set if self.layout is not None else set()
        foreign = given & (CHROMA_LAYOUT if self.adapter == "pgvector" else PGVECTOR_LAYOUT)
        if self.adapter in ("chroma", "pgvector") and foreign:
            raise ValueError(
                f"legacy.layout: {', '.join(sorted(foreign))} do not apply to "
                f"the {self.adapter} adapter"
            )
        if self.adapter == "pgvector":
            if self.url is None:
                raise ValueError("legacy.adapter pgvector needs legacy.url (the app's database)")
            if self.path is not None:
                raise ValueError("legacy.path is for an embedded Chroma folder, not pgvector")
        elif self.adapter == "chroma" and self.path is not None and self.url is not None:
            raise ValueError(
                "give legacy.path (embedded Chroma) or legacy.url (a server), not both"
            )
        return self

    @property
    def url_value(self) -> str | None:
        """The URL in clear (it may hold a database password)."""
        return self.url.get_secret_value() if self.url is not None else None


class TrafficConfig(Section):
    """Phase 2: the read-traffic steps and the gate before each."""

    steps: list[Fraction] = Field(default_factory=lambda: [0.2, 0.5, 0.8], min_length=1)
    #: how long each step runs before the next (a week in production, seconds in a demo)
    dwell: Duration = 7 * 86400.0
    #: ``--auto``: how long a gate without enough comparisons keeps watching for them before
    #: the command stops, leaving the traffic where it is (exit 3); default three dwells
    max_wait: Duration | None = None
    min_comparisons: int = Field(50, ge=1)
    min_overlap: Fraction = 0.7
    max_error_rate: Fraction = 0.05
    max_p95_latency_ms: float = Field(1000.0, gt=0)
    #: when set, the candidate's p95 is judged against the old system's p95 over the same
    #: comparisons (at most this many times it, plus 5 ms) instead of ``max_p95_latency_ms``:
    #: a bound that holds on a busy machine as well as on an idle one
    max_p95_vs_old: float | None = Field(None, ge=1.0)
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
    recall: RecallConfig = RecallConfig()
    quality: QualityConfig = QualityConfig()
    capacity: CapacityConfig = CapacityConfig()
    #: where the migration state lives: any SQLAlchemy URL readable by every app machine
    #: (default: the SQLite file <data_dir>/state.db)
    state_url: OptSecret = None
