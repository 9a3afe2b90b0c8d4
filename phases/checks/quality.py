"""``check quality``: how good are the old and the new system on the queries that matter?

Overlap says two systems agree, not that either is good. A judged query set says which notes
should come back: the operator's JSON Lines file, one ``{"userId", "query", "relevant":
[noteIds]}`` a line. Both systems (or two model versions of the new index) answer every query
and get recall@k, MRR (the reciprocal rank of the first relevant note within k) and nDCG@10
(binary relevance), side by side. The plan's bound is "new >= old - tolerance" on one of them
(``migration.quality``), checked before each phase 2 step, at phase 3 and at ``model switch``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from constellation.errors import InputFileError, PlanIssue, Unreachable
from constellation.query import SearchResult
from constellation.wiring.migration import Migration
from phases.checks.gates import GateCheck, Outcome, outcome_of
from phases.checks.golden import Judged, load_golden

Search = Callable[[str, str, int], list[SearchResult]]
#: progress callback: (what, total or None, advance by)
Progress = Callable[[str, int | None, int], None]
#: nDCG's cut-off, as sentence-transformers and BEIR report it
NDCG_AT = 10


# the measures, for one query ----------------------------------------------------------------
def recall_at(found: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the relevant notes among the first ``k`` found."""
    return len(set(found[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(found: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """1 / rank of the first relevant note within ``k`` (0 when none is)."""
    wanted = set(relevant)
    return next((1.0 / (i + 1) for i, note in enumerate(found[:k]) if note in wanted), 0.0)


def ndcg_at(found: Sequence[str], relevant: Sequence[str], k: int = NDCG_AT) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance."""
    wanted = set(relevant)
    dcg = sum(1.0 / math.log2(i + 2) for i, note in enumerate(found[:k]) if note in wanted)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return dcg / ideal


@dataclass(frozen=True)
class Scores:
    """One system's means over the judged queries."""

    system: str
    recall: float
    mrr: float
    ndcg: float
    errors: int = 0

    def metric(self, name: str) -> float:
        return {"recall@k": self.recall, "mrr": self.mrr, "ndcg@10": self.ndcg}[name]


def score(
    system: str, search: Search, judged: Sequence[Judged], k: int, tick: Callable[[], None]
) -> Scores:
    """Ask ``search`` every judged query; a failed search scores 0 and is counted."""
    depth = max(k, NDCG_AT)
    recall = mrr = ndcg = 0.0
    errors = 0
    for item in judged:
        try:
            found = [r.note_id for r in search(item.query, item.user_id, depth)]
        except Unreachable:
            raise  # a system out of reach is exit 4, not a system that answers badly
        except Exception:  # counted: a system that fails a query answers it with nothing
            errors += 1
            found = []
        recall += recall_at(found, item.relevant, k)
        mrr += reciprocal_rank(found, item.relevant, k)
        ndcg += ndcg_at(found, item.relevant)
        tick()
    n = len(judged)
    return Scores(system, recall / n, mrr / n, ndcg / n, errors)


@dataclass
class QualityReport:
    golden: str
    queries: int
    k: int
    metric: str
    tolerance: float
    baseline: Scores
    candidate: Scores
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    __json_properties__ = ("outcome",)

    @property
    def outcome(self) -> Outcome:
        """Pass when the candidate is no worse than the baseline by more than the tolerance."""
        allowed = self.baseline.metric(self.metric) - self.tolerance
        return outcome_of(self.candidate.metric(self.metric) >= allowed - 1e-12)

    def as_check(self) -> GateCheck:
        new, old = self.candidate.metric(self.metric), self.baseline.metric(self.metric)
        return GateCheck(
            f"quality ({self.metric}, {self.candidate.system} vs {self.baseline.system})",
            self.outcome,
            f"{new:.3f} vs {old:.3f} over {self.queries} judged queries",
            f">= {self.baseline.system} - {self.tolerance:g}",
            dry_run=self.dry_run,
        )


def check_quality(
    m: Migration,
    golden: Path | None = None,
    *,
    versions: tuple[int, int] | None = None,
    tolerance: float | None = None,
    on_progress: Progress | None = None,
) -> QualityReport:
    """Measure recall@k, MRR and nDCG@10 of the old and the new system (or two model versions)
    on a judged query set, side by side."""
    config = m.plan.migration.quality
    path = golden or config.golden
    if path is None:
        raise InputFileError(
            "judged query set",
            [
                PlanIssue(
                    str(m.plan.file),
                    None,
                    "migration.quality.golden",
                    "not set; give --golden FILE",
                )
            ],
        )
    judged = load_golden(Path(path))
    if versions is None:
        systems: list[tuple[str, Search]] = [("old", m.old_search), ("new", m.new_search)]
    else:
        first, second = versions
        systems = [
            (f"version {first}", m.version_search(first)),
            (f"version {second}", m.version_search(second)),
        ]
    total = len(judged) * len(systems)

    def tick() -> None:
        if on_progress:
            on_progress("judged queries", total, 1)

    baseline, candidate = (score(name, search, judged, config.k, tick) for name, search in systems)
    report = QualityReport(
        str(path),
        len(judged),
        config.k,
        config.metric,
        config.tolerance if tolerance is None else tolerance,
        baseline,
        candidate,
        dry_run=config.dry_run,
    )
    unknown = {j.user_id for j in judged} - set(m.source.users())
    if unknown:
        report.notes.append(f"{len(unknown)} userId(s) of the file have no notes in the source")
    return report


def plan_quality(m: Migration, versions: tuple[int, int] | None = None) -> QualityReport | None:
    """The plan's quality bound measured, or None when the plan names no judged query set."""
    if m.plan.migration.quality.golden is None:
        return None
    return check_quality(m, versions=versions)


def quality_checks(m: Migration, versions: tuple[int, int] | None = None) -> list[GateCheck]:
    """The plan's quality bound as a gate check, or nothing when no judged set is configured."""
    report = plan_quality(m, versions)
    return [] if report is None else [report.as_check()]
