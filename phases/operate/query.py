"""``constellation query``: one user's search (:meth:`Migration.search`, the search every
caller runs), with what a person needs to read its answer: a snippet of each note found, from
the notes source, and where nothing was found, why and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from constellation.errors import SourceError
from constellation.query import Searched
from constellation.wiring.migration import Migration

#: characters of a note shown beside its score
SNIPPET = 80
#: what a score is, said once beside the results
SCORE_MEANING = (
    "score: the cosine similarity of the note to the search (1 the same meaning, "
    "around 0.2 or less unrelated)"
)


USERS_HINT = "every user with notes, the most first: `constellation users`"


@dataclass(frozen=True)
class Answer:
    """A search and, by note id, the start of each note found (its text now in the source)."""

    searched: Searched
    snippets: dict[str, str] = field(default_factory=dict)
    #: what to run next when nothing was found
    hint: str = ""


def query(
    m: Migration, text: str, user_id: str, top_k: int = 10, versions: Sequence[int] | None = None
) -> Answer:
    """Search one user's notes; each note found with the start of its text."""
    searched = m.search(text, user_id, top_k, versions)
    try:
        if not searched.results:
            hint = "" if m.source.count(user_id) else USERS_HINT
            return Answer(searched, {}, hint)
        notes = m.source.current([r.note_id for r in searched.results])
    except SourceError:
        # the search stands without the notes' text (a service fed only through /embed)
        return Answer(searched, {}, "" if searched.results else USERS_HINT)
    snippets = {
        note_id: _snippet(note.content)
        for note_id, note in notes.items()
        if note.user_id == user_id
    }
    return Answer(searched, snippets)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET else flat[: SNIPPET - 1].rstrip() + "…"
