"""Text preprocessing, the same for the worker, queries and the legacy system.

In order:

1. Unicode NFC, so that the same visible text always gives the same tokens and content hash.
2. Control characters removed (Unicode category Cc, and format characters Cf such as zero-width
   spaces and BOMs). Newlines and tabs count as whitespace, not as control characters.
3. Whitespace collapsed: every run of whitespace becomes one space; leading and trailing
   whitespace is dropped.
4. Truncation to the model's maximum sequence length, measured in the model's own tokens (not
   characters): the text is cut after the last token the model would read, so the stored text
   hash describes exactly what was embedded. Truncated jobs are counted.

Empty text: a job whose text is empty after steps 1–3 has nothing to embed, and embedding ""
would store a meaningless vector. It means the note was emptied, so the worker deletes that note's
record for that version (if the stored one is not newer) and acknowledges the job, counting it as
``empty``. No vector is ever stored for empty text. Queries with empty text return no results.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from constellation.embedders.port import Embedder

_WHITESPACE = re.compile(r"\s+")


#: ASCII control characters that are not whitespace (whitespace is collapsed, not removed)
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def normalize(text: str) -> str:
    """Steps 1–3: NFC, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii():  # the common case, without a Python loop over every character
        text = _ASCII_CONTROL.sub("", text)
    else:
        text = "".join(
            ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
        )
    return _WHITESPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class Prepared:
    """A text ready to embed."""

    text: str
    truncated: bool

    @property
    def empty(self) -> bool:
        return not self.text


def prepare(texts: Sequence[str], embedder: Embedder) -> list[Prepared]:
    """All four steps for a batch (one tokenizer call for the whole batch)."""
    return cut([normalize(text) for text in texts], embedder)


def cut(normalized: Sequence[str], embedder: Embedder) -> list[Prepared]:
    """Step 4 for texts already through :func:`normalize` (the worker normalizes first, to
    skip unchanged notes before any tokenizer runs)."""
    to_cut = [text for text in normalized if text]
    pieces = iter(embedder.truncate(to_cut))
    prepared = []
    for text in normalized:
        if not text:
            prepared.append(Prepared("", False))
        else:
            short, truncated = next(pieces)
            prepared.append(Prepared(short, truncated))
    return prepared
