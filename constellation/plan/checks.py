"""Plan sections of the checks that judge the new index: recall, quality and capacity.

Each check can be ``dry_run: true``: measured and shown (and recorded for ``migrate status``)
but never deciding a gate, so an operator can watch a new bound before enforcing it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from constellation.plan.fields import Fraction, PlanPath, Section

#: the quality measures ``check quality`` reports; the plan's bound applies to one of them
QualityMetric = Literal["recall@k", "mrr", "ndcg@10"]


class RecallConfig(Section):
    """Index health: recall@k of the new index against exact search over the same users'
    notes, embedded again from the notes source (never from the stored vectors)."""

    #: pass when the mean recall@k over the sampled queries reaches this
    min_recall: Fraction = 0.95
    k: int = Field(10, ge=1, le=100)
    #: users sampled (each user's notes are embedded again: the cost grows with their notes)
    users: int = Field(5, ge=1)
    #: queries per sampled user (a few words from one of that user's notes)
    queries: int = Field(10, ge=1)
    #: the most notes embedded again for one check (a user beyond it is skipped, and said)
    max_notes: int = Field(2000, ge=1)
    dry_run: bool = False


class QualityConfig(Section):
    """A judged query set (JSONL: ``{"userId", "query", "relevant": [noteIds]}`` a line) and
    the bound "new >= old - tolerance", checked before each phase 2 step, at phase 3 and at
    ``model switch`` when ``golden`` is set."""

    golden: PlanPath | None = None
    tolerance: float = Field(0.02, ge=0.0, le=1.0)
    metric: QualityMetric = "ndcg@10"
    #: the cut-off of recall@k and MRR (nDCG is always at 10)
    k: int = Field(10, ge=1, le=100)
    dry_run: bool = False


class CapacityConfig(Section):
    """The capacity check at the start of phase 1 (and ``check capacity``)."""

    #: notes embedded to measure this machine's rate with the plan's model
    sample: int = Field(64, ge=1)
    #: warn when the index would take more than this share of what is free
    warn_at: Fraction = 0.8
    dry_run: bool = False
