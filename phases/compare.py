"""``compare``: one note in the old and the new system side by side, with the cosine of the
two vectors when they come from the same model."""

from __future__ import annotations

import math
from dataclasses import dataclass

from constellation import records
from constellation.migration.runtime import Migration


@dataclass(frozen=True)
class Side:
    present: bool
    metadata: dict[str, object]


@dataclass(frozen=True)
class NoteComparison:
    user_id: str
    note_id: str
    old: Side
    new: Side
    #: cosine similarity of the two vectors, when both exist and come from the same model
    cosine: float | None
    note: str = ""


def compare(m: Migration, user_id: str, note_id: str, version: int | None = None) -> NoteComparison:
    """One note in the old and the new system, side by side."""
    version = m.plan.default_version if version is None else version
    record_id = records.record_id(user_id, note_id, version)
    new = m.services.index(version).get([record_id], include_vectors=True).get(record_id)
    old = m.legacy.get(user_id, note_id) if hasattr(m.legacy, "get") else None
    cosine = None
    note = ""
    if old is not None and new is not None and old.vector is not None and new.vector is not None:
        # An app's own layout has no model key: the old system's declared model stands for it.
        old_model = old.metadata.get(records.MODEL, getattr(m.legacy, "model", None))
        if old_model == new.metadata.get(records.MODEL):
            cosine = _cosine(list(old.vector), list(new.vector))
        else:
            note = "different models: vectors are not comparable"
    elif not hasattr(m.legacy, "get"):
        note = "the legacy adapter cannot fetch single records"
    return NoteComparison(
        user_id,
        note_id,
        Side(old is not None, dict(old.metadata) if old else {}),
        Side(new is not None, dict(new.metadata) if new else {}),
        cosine,
        note,
    )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
