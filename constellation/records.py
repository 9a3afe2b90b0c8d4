"""Vector records: ids, content hashes and metadata, as DESIGN.md's contract says.

One record per (userId, noteId, version). Its id must never collide: ``a:b`` + ``c`` and ``a`` +
``b:c`` must differ, so each part is percent-escaped (``%`` and ``:`` only) before joining with
``:``. That keeps ids readable for ordinary ids and injective for all of them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from constellation.index.port import MetadataValue
from constellation.jobs import Job

#: metadata keys of every record
USER, NOTE, VERSION, CREATED, HASH, MODEL = (
    "userId",
    "noteId",
    "version",
    "created",
    "contentHash",
    "model",
)
#: hash of the note's normalized text before truncation (and the model): equal means unchanged,
#: found without the tokenizer (see :func:`source_hash`)
SOURCE = "sourceHash"


_ESCAPED = re.compile("%25|%3A")
_UNESCAPE = {"%25": "%", "%3A": ":"}


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


def record_id(user_id: str, note_id: str, version: int) -> str:
    """The id of the record for this note and model version (collision-free)."""
    return f"{_escape(user_id)}:{_escape(note_id)}:v{version}"


def user_of(record_id: str) -> str | None:
    """The user id inside a :func:`record_id`, or None for an id of another form."""
    parts = record_id.split(":")
    if len(parts) != 3 or not parts[2].startswith("v") or not parts[2][1:].isdigit():
        return None
    return _ESCAPED.sub(lambda m: _UNESCAPE[m.group()], parts[0])


def content_hash(text: str, model: str) -> str:
    """Hash of the preprocessed text and the model: equal hashes mean an equal vector."""
    digest = hashlib.sha256()
    digest.update(model.encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()[:32]


def source_hash(normalized: str, model: str) -> str:
    """Hash of a note's text after :func:`~constellation.preprocess.normalize`, before the
    cut to the model's tokens. Truncation is a function of that text and the model, so an equal
    source hash means an equal embedded text, found without running the tokenizer."""
    return content_hash(normalized, f"{model}\0source")


def metadata(
    job: Job, text_hash: str, model: str, source: str | None = None
) -> dict[str, MetadataValue]:
    """The metadata stored with a job's vector (``source``: its :func:`source_hash`)."""
    values: dict[str, MetadataValue] = {
        USER: job.user_id,
        NOTE: job.note_id,
        VERSION: job.version,
        CREATED: job.created,
        HASH: text_hash,
        MODEL: model,
    }
    if source is not None:
        values[SOURCE] = source
    return values


def created_of(meta: dict[str, Any] | Any) -> int:
    value = meta.get(CREATED, 0)
    return int(value) if isinstance(value, int | float) else 0
