"""Inconsistent results between the systems: record counts, then for sampled notes each side's
record checked against that side's own text preparation (from its content hash), the metadata,
and the two compared: their vectors where both embed the same text with the same model, else
their searches (the note's text searched on both systems, top-K overlap against the plan's
bound), since two systems that prepare text differently by design store different vectors.
Last, the query parameters each side searches with."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from constellation import records
from constellation.errors import ConstellationError
from constellation.index.port import StoredRecord
from constellation.jsondata import iso_time
from constellation.ledger.comparisons import overlap
from constellation.migration.legacy import Archivable, FetchesNotes
from constellation.migration.legacy.chroma import ChromaLegacy
from constellation.migration.legacy.layout import OURS, AppText, Layout
from constellation.migration.source import Note
from constellation.preprocess import normalize, prepare
from constellation.wiring.migration import Migration
from phases.doctor.report import Area

#: two vectors of one text by one model agree to float noise; below this they are different
SAME_VECTOR = 0.999


def diagnose_consistency(m: Migration, *, samples: int) -> Area:
    """Do both systems hold the same notes, embedded the same way, searched the same way?"""
    area = Area("consistency", "inconsistent results between the systems")
    state = m.state.read()
    if state.write_mode != "dual":
        area.skipped = True
        area.notes.append(
            f"write mode {state.write_mode}: only one system holds current notes (both do "
            "from phase 1 to phase 3)"
        )
        return area
    legacy = m.legacy
    if not isinstance(legacy, FetchesNotes):
        area.skipped = True
        area.notes.append("the old system's adapter cannot fetch single records (no get)")
        return area
    version = state.read_versions[0]
    old_version = m.plan.legacy.model_version
    new_model, old_model = m.plan.model(version), m.plan.model(old_version)
    try:
        index = m.services.index(version)
        new_count = index.count(version=version)
        old_count = legacy.count() if isinstance(legacy, Archivable) else None
    except ConstellationError as exc:
        area.find(f"a system cannot be read: {exc}", "constellation verify")
        return area
    notes = _non_blank_notes(m)
    area.figures = {
        "source notes (not empty)": notes,
        "new index records": new_count,
        "old index records": old_count,
        "queue depth": m.services.queue.depth().total,
        "query parameters": _parameters(m, version, old_version),
    }
    problems: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sample = [n for n in m.source.sample(samples, seed=11) if n.content.strip()]
    prepared = prepare([n.content for n in sample], m.services.embedder(version))
    app_text = AppText.from_config(m.plan.legacy)
    old_texts = app_text.prepare([n.content for n in sample], m.services.embedder(old_version))
    new_ids = [records.record_id(n.user_id, n.id, version) for n in sample]
    new = index.get(new_ids, include_vectors=True)
    consistency = m.plan.migration.consistency
    searched: list[float] = []
    for note, text, old_text, record_id in zip(sample, prepared, old_texts, new_ids, strict=True):
        if text.empty:
            continue
        old = legacy.get(note.user_id, note.id)
        sides = Sides(text.text, old_text, new_model.name, old_model.name)
        if not _compare(note, sides, new.get(record_id), old, problems):
            continue  # a record is missing or stale: its search says nothing more
        if sides.same_input:
            continue  # the vectors were compared directly
        agreement = _search_agreement(m, note, consistency.top_k)
        searched.append(agreement)
        if agreement < consistency.min_overlap:
            problems[SEARCHES_DIFFER].append(
                {"user": note.user_id, "note": note.id, "overlap": round(agreement, 3)}
            )
    area.figures["notes sampled"] = len(sample)
    if searched:
        area.figures["notes each side prepares differently"] = len(searched)
        area.figures[f"their mean top-{consistency.top_k} search overlap"] = round(
            sum(searched) / len(searched), 3
        )
    for problem, cases in problems.items():
        first = cases[0]
        area.find(
            f"{len(cases)} of {len(sample)} sampled note(s): {problem}",
            _NEXT.get(problem, COMPARE).format(user=first["user"], note=first["note"]),
            notes=cases[:10],
        )
    if notes is not None and new_count < notes and not problems.get(MISSING_NEW):
        area.find(
            f"the new index holds {new_count:,} records for {notes:,} notes",
            "constellation recover",
            source_notes=notes,
            new_records=new_count,
            queue_depth=area.figures["queue depth"],
        )
    params = area.figures["query parameters"]
    for name in ("metric", "dimensions"):
        if params["old"].get(name) not in (None, params["new"][name]):
            area.find(
                f"the systems search with different {name}: old {params['old'][name]}, "
                f"new {params['new'][name]}",
                "constellation describe",
                parameters=params,
            )
    return area


MISSING_NEW = "missing in the new index (deleted outside Constellation, or never stored)"
MISSING_OLD = "missing in the old index"
SEARCHES_DIFFER = "searches on the two systems disagree (top-K overlap below the plan's bound)"
COMPARE = "constellation compare --user {user} --note {note}"
_NEXT = {
    MISSING_NEW: "constellation requeue --user {user} --note {note}",
    MISSING_OLD: COMPARE,
}


@dataclass(frozen=True)
class Sides:
    """One note as each system prepares and embeds it."""

    new_text: str
    old_text: str
    new_model: str
    old_model: str

    @property
    def same_input(self) -> bool:
        """Both systems embed the very same text with the same model: their vectors must
        agree (to float noise)."""
        return self.new_text == self.old_text and self.new_model == self.old_model


def _compare(
    note: Note,
    sides: Sides,
    new: StoredRecord | None,
    old: StoredRecord | None,
    problems: dict[str, list[dict[str, Any]]],
) -> bool:
    """Each side's record against the note and that side's own text preparation; the vectors
    against each other where both embed the same input. False when a record is missing or
    older than the note (nothing more to compare)."""
    case: dict[str, Any] = {"user": note.user_id, "note": note.id}
    if new is None:
        problems[MISSING_NEW].append(case)
    if old is None:
        problems[MISSING_OLD].append(case)
    if new is None or old is None:
        return False
    current = True
    for side, record, text, model in (
        ("new", new, sides.new_text, sides.new_model),
        ("old", old, sides.old_text, sides.old_model),
    ):
        meta = record.metadata
        if (meta.get(records.USER), meta.get(records.NOTE)) not in (
            (note.user_id, note.id),
            (None, None),
        ):
            problems[f"{side} record's userId/noteId differ from the note's"].append(
                case
                | {"stored userId": meta.get(records.USER), "stored noteId": meta.get(records.NOTE)}
            )
        if records.created_of(meta) and records.created_of(meta) < note.edited:
            problems[f"{side} record older than the note's last edit"].append(
                case
                | {
                    "record created": iso_time(records.created_of(meta), "ms"),
                    "note edited": iso_time(note.edited, "ms"),
                }
            )
            current = False
        stored = meta.get(records.HASH)
        if stored and stored != records.content_hash(text, model):
            problems[
                f"{side} record embedded other text: {_which_text(note, stored, model)}"
            ].append(case)
            current = False
    if sides.same_input and new.vector is not None and old.vector is not None:
        cosine = _cosine(list(new.vector), list(old.vector))
        if cosine < SAME_VECTOR:
            problems["vectors differ for the same text and model"].append(
                case | {"cosine": round(cosine, 4)}
            )
    return current


def _search_agreement(m: Migration, note: Note, top_k: int) -> float:
    """The top-K overlap of the two systems' searches for a note's own text, each system
    preparing the text its own way (as ``check consistency`` measures it)."""
    old = [r.note_id for r in m.old_search(note.content, note.user_id, top_k)]
    new = [r.note_id for r in m.new_search(note.content, note.user_id, top_k)]
    return overlap(old, new)


def _which_text(note: Note, stored: object, model: str) -> str:
    """Which preprocessing gives the stored hash: tells a skipped step from stale content."""
    if stored == records.content_hash(note.content, model):
        return "the raw text (no normalization or truncation)"
    if stored == records.content_hash(normalize(note.content), model):
        return "the normalized text without truncation to the model's length"
    return "an older version of the note (stale)"


def _parameters(m: Migration, version: int, old_version: int) -> dict[str, dict[str, Any]]:
    """What each side searches with: model, text preparation, metric, dimensions, and where
    a search for a sampled user runs with which filter."""
    new_model, old_model = m.plan.model(version), m.plan.model(old_version)
    new_info = m.services.store.inspect(m.plan.index_name_for(version))
    old_info = None
    if isinstance(m.legacy, ChromaLegacy):  # an index store we can inspect
        old_info = m.legacy.store.inspect(m.plan.legacy.name)
    users = m.source.users()
    user = users[0] if users else "<user>"
    layout = Layout.from_config(m.plan.legacy)
    return {
        "new": {
            "model": new_model.name,
            "text preparation": OURS,
            "metric": new_info.metric if new_info else None,
            "dimensions": new_info.dimension if new_info else None,
            "search": m.services.index(version).search_filter(user, version),
        },
        "old": {
            "model": old_model.name,
            "text preparation": AppText.from_config(m.plan.legacy).describe(),
            "metric": old_info.metric if old_info else None,
            "dimensions": old_info.dimension if old_info else None,
            "search": f"{m.plan.legacy.name}: {layout.describe()}; filter {layout.user_key} = {user}",
        },
    }


def _non_blank_notes(m: Migration) -> int | None:
    """Notes whose content is not blank (empty notes have no record on either side)."""
    source = m.source
    content = source.c["content"]
    query = (
        sa.select(sa.func.count())
        .select_from(source.table)
        .where(sa.func.length(sa.func.trim(content)) > 0)
    )
    try:
        with source.engine.connect() as db:
            return int(db.execute(query).scalar_one())
    except sa.exc.SQLAlchemyError:
        return None


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
