"""Judged query sets: the operator's file of queries and the notes that should answer them.

JSON Lines, one ``{"userId": str, "query": str, "relevant": [noteId, ...]}`` a line (blank
lines are skipped, unknown keys ignored). A bad file is refused whole, every problem named
with its file, line and field (exit 2). The demo builds one from its sample app
(:func:`judged_from_notes`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from constellation.errors import InputFileError, PlanIssue
from constellation.migration.source import Note
from constellation.preprocess import normalize

WHAT = "judged query set"


@dataclass(frozen=True)
class Judged:
    """One judged query: a user's search and the notes that should answer it."""

    line: int
    user_id: str
    query: str
    relevant: tuple[str, ...]


def load_golden(path: Path) -> list[Judged]:
    """Read a judged query set; every bad line is reported at once with file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(WHAT, [PlanIssue(str(path), None, "", f"cannot read: {exc}")]) from exc
    issues: list[PlanIssue] = []
    judged: list[Judged] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue

        def bad(name: str, message: str, line: int = number) -> None:
            issues.append(PlanIssue(str(path), line, name, message))

        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            bad("", f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(item, dict):
            bad("", f"expected an object, got {type(item).__name__}")
            continue
        user, query, relevant = item.get("userId"), item.get("query"), item.get("relevant")
        ok = True
        for name, value in (("userId", user), ("query", query)):
            if not isinstance(value, str) or not value.strip():
                bad(name, "required: a non-empty string" + _got(item, name))
                ok = False
        if (
            not isinstance(relevant, list)
            or not relevant
            or not all(isinstance(n, str) and n for n in relevant)
        ):
            bad(
                "relevant",
                "required: a non-empty list of noteIds (strings)" + _got(item, "relevant"),
            )
            ok = False
        if ok:
            judged.append(Judged(number, str(user), str(query), tuple(dict.fromkeys(relevant))))  # type: ignore[arg-type]
    if not judged and not issues:
        issues.append(PlanIssue(str(path), None, "", "no judged queries in the file"))
    if issues:
        raise InputFileError(WHAT, issues)
    return judged


def _got(item: dict[str, object], name: str) -> str:
    return f" (got {item[name]!r})" if name in item else ""


def judged_from_notes(
    notes: Sequence[Note], count: int = 40, seed: int = 5, words: int = 150
) -> list[dict[str, object]]:
    """A judged set from an app's notes: each query is a few words of one note (within the
    first ``words`` words, the part a model reads), and the relevant notes are that user's
    notes that contain those words (the note itself, and any near-duplicate)."""
    rng = random.Random(seed)
    by_user: dict[str, list[Note]] = {}
    for note in notes:
        by_user.setdefault(note.user_id, []).append(note)
    texts = {n.id: normalize(n.content).lower() for n in notes}
    judged: list[dict[str, object]] = []
    for note in rng.sample(list(notes), min(count, len(notes))):
        seen = note.content.split()[:words]
        if len(seen) < 4:
            continue
        start = rng.randrange(max(1, len(seen) - 8))
        query = " ".join(seen[start : start + rng.randint(4, 8)])
        wanted = normalize(query).lower()
        relevant = [n.id for n in by_user[note.user_id] if wanted in texts[n.id]]
        judged.append({"userId": note.user_id, "query": query, "relevant": relevant})
    return judged


def write_golden(path: Path, judged: Sequence[dict[str, object]]) -> Path:
    """Write a judged set as JSON Lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(item) + "\n" for item in judged), encoding="utf-8")
    return path
