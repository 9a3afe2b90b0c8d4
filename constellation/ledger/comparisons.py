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
        return self.summarize(self.since(start))

    def side_by_side(self, since: float, until: float, buckets: int = 30) -> SideBySide:
        """Old beside new from ``since`` to ``until`` in ``buckets`` slices of time."""
        rows = [r for r in self.since(since) if r.at <= until]
        return side_by_side(rows, since, until, buckets)

    @staticmethod
    def summarize(rows: Sequence[Comparison]) -> ComparisonSummary:
        """The gate's figures over ``rows``."""
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


#: the overlap distribution's bins: [0, 0.1), [0.1, 0.2), ... [0.9, 1.0]
OVERLAP_BINS = 10


@dataclass(frozen=True)
class ComparisonBucket:
    """The comparisons of one slice of time: overlap, each side's latency and errors."""

    start: float = field(metadata=EPOCH_SECONDS)
    comparisons: int
    mean_overlap: float | None
    old_p50_ms: float | None
    old_p95_ms: float | None
    new_p50_ms: float | None
    new_p95_ms: float | None
    old_errors: int
    new_errors: int


@dataclass(frozen=True)
class SideBySide:
    """Old beside new over a range: the same searches, both answers, sliced in time."""

    since: float = field(metadata=EPOCH_SECONDS)
    until: float = field(metadata=EPOCH_SECONDS)
    bucket_seconds: float
    buckets: list[ComparisonBucket]
    #: comparisons whose overlap fell in each bin (``OVERLAP_BINS`` of 0.1 from 0 to 1)
    overlap_histogram: list[int]
    #: the whole range's figures, as the gate reads them
    total: ComparisonSummary
    old_p50_ms: float | None
    new_p50_ms: float | None


def _slice(rows: Sequence[Comparison], start: float) -> ComparisonBucket:
    both = [r.overlap for r in rows if r.overlap is not None]
    old_ok = [r.old_ms for r in rows if r.old_error is None and r.old_ms is not None]
    new_ok = [r.new_ms for r in rows if r.new_error is None and r.new_ms is not None]
    return ComparisonBucket(
        start=start,
        comparisons=len(rows),
        mean_overlap=sum(both) / len(both) if both else None,
        old_p50_ms=percentile(old_ok, 50),
        old_p95_ms=percentile(old_ok, 95),
        new_p50_ms=percentile(new_ok, 50),
        new_p95_ms=percentile(new_ok, 95),
        old_errors=sum(r.old_error is not None for r in rows),
        new_errors=sum(r.new_error is not None for r in rows),
    )


def side_by_side(
    rows: Sequence[Comparison], since: float, until: float, buckets: int = 30
) -> SideBySide:
    """``rows`` (recorded in ``[since, until]``) in ``buckets`` equal slices of time, the
    distribution of their overlaps, and the range's totals."""
    width = max((until - since) / max(buckets, 1), 1e-9)
    slices: list[list[Comparison]] = [[] for _ in range(max(buckets, 1))]
    histogram = [0] * OVERLAP_BINS
    for row in rows:
        slot = min(max(int((row.at - since) / width), 0), len(slices) - 1)
        slices[slot].append(row)
        if row.overlap is not None:
            histogram[min(int(row.overlap * OVERLAP_BINS), OVERLAP_BINS - 1)] += 1
    total = _slice(rows, since)
    return SideBySide(
        since=since,
        until=until,
        bucket_seconds=width,
        buckets=[_slice(s, since + i * width) for i, s in enumerate(slices)],
        overlap_histogram=histogram,
        total=ComparisonLog.summarize(rows),
        old_p50_ms=total.old_p50_ms,
        new_p50_ms=total.new_p50_ms,
    )
