"""Plan sections of the migration: notes source, old system, consistency, traffic steps, state."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

from pydantic import Field, field_validator

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


class LegacyConfig(Section):
    """The old system: a Chroma collection filled inline, or the operator's own ``module:object``."""

    adapter: Annotated[str, adapter_name("legacy")] = "chroma"
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
