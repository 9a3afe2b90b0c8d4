"""``compare``: one note in the source database, the old and the new system side by side, with
the cosine of the two vectors when they come from the same model.

The source row is the truth: its last edit and the content hash its text gives now (same
preprocessing, same model as the worker) sit beside each record's ``created`` and
``contentHash``, so a stale record shows why it is stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from constellation import records
from constellation.errors import IndexNotFound, NoteNotFound
from constellation.migration.legacy import FetchesNotes
from constellation.preprocess import prepare
from constellation.wiring.migration import Migration

#: characters of the source text shown (the whole text is in the source database)
TEXT_PREVIEW = 120


@dataclass(frozen=True)
class Side:
    present: bool
    metadata: dict[str, object]


@dataclass(frozen=True)
class NoteComparison:
    user_id: str
    note_id: str
    #: the source row: created, updated, edited (epoch ms), text, and the content hash its
    #: text gives with the new system's model
    source: Side
    old: Side
    new: Side
    #: cosine similarity of the two vectors, when both exist and come from the same model
    cosine: float | None
    note: str = ""


def compare(m: Migration, user_id: str, note_id: str, version: int | None = None) -> NoteComparison:
    """One note in the source, the old and the new system, side by side."""
    version = m.plan.default_version if version is None else version
    record_id = records.record_id(user_id, note_id, version)
    new = m.services.index(version).get([record_id], include_vectors=True).get(record_id)
    note = ""
    legacy = m.legacy
    fetches = isinstance(legacy, FetchesNotes)
    try:
        old = legacy.get(user_id, note_id) if isinstance(legacy, FetchesNotes) else None
    except IndexNotFound:
        old, note = None, "the old system has no index here"
    cosine = None
    if old is not None and new is not None and old.vector is not None and new.vector is not None:
        # An app's own layout has no model key: the old system's declared model stands for it.
        declared = legacy.model if isinstance(legacy, FetchesNotes) else None
        old_model = old.metadata.get(records.MODEL, declared)
        if old_model == new.metadata.get(records.MODEL):
            cosine = _cosine(list(old.vector), list(new.vector))
        else:
            note = "different models: vectors are not comparable"
    elif not note and not fetches:
        note = "the legacy adapter cannot fetch single records"
    source = _source(m, user_id, note_id, version)
    if not (source.present or old is not None or new is not None):
        raise _not_found(m, user_id, note_id)
    return NoteComparison(
        user_id,
        note_id,
        source,
        Side(old is not None, dict(old.metadata) if old else {}),
        Side(new is not None, dict(new.metadata) if new else {}),
        cosine,
        note,
    )


def _not_found(m: Migration, user_id: str, note_id: str) -> NoteNotFound:
    """No system holds the note for this user: whose it is, if anyone's."""
    owners = [u for u in m.source.owners(note_id) if u != user_id]
    if owners:
        return NoteNotFound(
            f"note {note_id} is not a note of user {user_id}: it belongs to "
            f"{', '.join('user ' + u for u in owners)}",
            f"compare it as its owner: `constellation compare --user {owners[0]} --note {note_id}`",
        )
    return NoteNotFound(
        f"no note {note_id} of user {user_id} in the notes source, the old or the new system",
        "list users and their notes with `constellation users`",
    )


def _source(m: Migration, user_id: str, note_id: str, version: int) -> Side:
    row = m.source.get(user_id, note_id)
    if row is None:
        return Side(False, {})
    model = m.plan.model(version).name
    prepared = prepare([row.content], m.services.embedder(version))[0]
    text = row.content if len(row.content) <= TEXT_PREVIEW else row.content[:TEXT_PREVIEW] + "…"
    return Side(
        True,
        {
            records.USER: row.user_id,
            records.NOTE: row.id,
            records.CREATED: row.edited,
            "noteCreated": row.created,
            "noteUpdated": row.updated,
            records.HASH: None if prepared.empty else records.content_hash(prepared.text, model),
            records.MODEL: model,
            "text": text,
        },
    )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
