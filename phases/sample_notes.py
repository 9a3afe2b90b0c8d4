"""Sample notes from real text every machine has offline: Python's own documentation.

CPython ships its help topics (``pydoc_data.topics``: the language reference sections that
``help("if")`` prints). Split into paragraphs, they make notes of realistic, varied length,
with their line breaks and indentation as a person's notes have them. The same seed always
gives the same notes, spread over users as unevenly as real users are.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from constellation.migration.source import Note

#: first note time: 2026-01-01, epoch ms
EPOCH_MS = 1_767_225_600_000


def paragraphs(min_chars: int = 40, max_chars: int = 1800) -> list[str]:
    """Paragraphs of Python's help topics in a stable order, with their own line breaks and
    indentation (only the ends stripped); lengths are counted without the extra whitespace."""
    from pydoc_data.topics import topics

    found: list[str] = []
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            text = " ".join(block.split())
            if min_chars <= len(text) <= max_chars and not text.startswith(("*", "=", "-")):
                found.append(block.strip())
    return found


def sample_notes(count: int, users: int = 20, seed: int = 7) -> list[Note]:
    """``count`` notes over ``users`` users. Longer notes join two or three paragraphs."""
    rng = random.Random(seed)
    source = paragraphs()
    user_ids = [f"user-{i:02d}" for i in range(1, users + 1)]
    # Some users write much more than others (a Zipf-like spread).
    weights = [1 / (rank + 1) ** 0.6 for rank in range(users)]
    notes = []
    for i in range(count):
        parts = rng.choices([1, 1, 1, 2, 3], k=1)[0]
        start = rng.randrange(len(source))
        text = "\n\n".join(source[(start + j) % len(source)] for j in range(parts))
        created = EPOCH_MS + i * 60_000
        notes.append(
            Note(
                id=f"note-{i:06d}",
                user_id=rng.choices(user_ids, weights)[0],
                content=text,
                created=created,
                updated=created,
            )
        )
    return notes


def search_phrases(notes: list[Note], seed: int = 11) -> Iterator[tuple[str, str]]:
    """Endless (user, query) pairs like an app's searches: a few words from the user's notes."""
    rng = random.Random(seed)
    by_user: dict[str, list[Note]] = {}
    for note in notes:
        by_user.setdefault(note.user_id, []).append(note)
    users = sorted(by_user)
    while True:
        user = rng.choice(users)
        words = rng.choice(by_user[user]).content.split()
        start = rng.randrange(max(1, len(words) - 8))
        yield user, " ".join(words[start : start + rng.randint(3, 8)])
