"""The comparison log: one row per routed search while old and new both run.

Each row holds which system served the user, the overlap of the two result lists (noteIds),
both result counts, both latencies and both errors. Phase 2's gates read it: enough
comparisons since the last step, mean overlap, the candidate's error rate and p95 latency.
It lives beside the migration state (same database), so every app machine writes to one log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from constellation.ledger.db import PlanLog
from constellation.timefields import EPOCH_SECONDS

_metadata = sa.MetaData()
_log = sa.Table(
    "migration_comparison",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan", sa.String(200), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("served", sa.String(8), nullable=False),
    sa.Column("traffic", sa.Float, nullable=False),
    sa.Column("overlap", sa.Float),
    sa.Column("old_count", sa.Integer),
    sa.Column("new_count", sa.Integer),
    sa.Column("old_ms", sa.Float),
    sa.Column("new_ms", sa.Float),
    sa.Column("old_error", sa.Text),
    sa.Column("new_error", sa.Text),
)


@dataclass(frozen=True)
class Comparison:
    at: float = field(metadata=EPOCH_SECONDS)
    #: which system's results the user got: "old" or "new"
    served: str
    traffic: float
    overlap: float | None
    old_count: int | None
    new_count: int | None
    old_ms: float | None
    new_ms: float | None
    old_error: str | None = None
    new_error: str | None = None


@dataclass(frozen=True)
class ComparisonSummary:
    """What the phase 2 gate reads, over the comparisons since a point in time."""

    comparisons: int
    #: comparisons where both sides answered (the overlap is defined)
    compared: int
    mean_overlap: float | None
    new_error_rate: float
    old_error_rate: float
    new_p95_ms: float | None
    old_p95_ms: float | None


def overlap(old: Sequence[str], new: Sequence[str]) -> float:
    """Shared noteIds over the longer list (1.0 when both are empty)."""
    longest = max(len(old), len(new))
    return 1.0 if longest == 0 else len(set(old) & set(new)) / longest


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0–100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class ComparisonLog(PlanLog[Comparison]):
    """Every routed search's comparison, in the migration's database."""

    def __init__(self, url: str, plan: str, environment: str) -> None:
        super().__init__(url, plan, environment, _log, Comparison)

    def record(self, comparison: Comparison) -> None:
        self.append(comparison)

    def summary(self, start: float) -> ComparisonSummary:
        """The gate's figures over every comparison recorded at or after ``start``."""
        rows = self.since(start)
        both = [r.overlap for r in rows if r.overlap is not None]
        new_ok = [r.new_ms for r in rows if r.new_error is None and r.new_ms is not None]
        old_ok = [r.old_ms for r in rows if r.old_error is None and r.old_ms is not None]
        total = len(rows)
        return ComparisonSummary(
            comparisons=total,
            compared=len(both),
            mean_overlap=sum(both) / len(both) if both else None,
            new_error_rate=sum(r.new_error is not None for r in rows) / total if total else 0.0,
            old_error_rate=sum(r.old_error is not None for r in rows) / total if total else 0.0,
            new_p95_ms=percentile(new_ok, 95),
            old_p95_ms=percentile(old_ok, 95),
        )
