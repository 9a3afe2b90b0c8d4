"""The app's own ways: how it laid out its records and how it prepared text before embedding.

A real app's old index holds the app's ids and the app's metadata, not Constellation's. The
plan's ``legacy.layout`` says how: an id template (``"{noteId}"``, ``"note-{noteId}"``,
``"{userId}/{noteId}"``), the metadata key holding the user id and, if the app keeps one, the
key holding the note id (else it is read back from the record id). Without a layout the old
index is in Constellation's record format (ids ``user:note:vN``, metadata userId, noteId,
version, created, contentHash, model), which is what the embedded default used to build.

``legacy.preprocess`` says how the app prepared a note's text: ours (NFC, control characters
removed, whitespace collapsed, cut in model tokens) or the raw text, optionally cut after a
number of characters. Searches on the old system prepare the query the same way, as the app's
own search did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from constellation import records
from constellation.embedders.port import Embedder
from constellation.index.port import MetadataValue
from constellation.migration.source import Note
from constellation.plan import LegacyConfig
from constellation.preprocess import prepare

_FIELD = re.compile(r"\{(userId|noteId)\}")
#: Constellation's own text preparation (:mod:`constellation.preprocess`), in words
OURS = "NFC, control characters removed, whitespace collapsed, cut to the model's tokens"


@dataclass(frozen=True)
class Layout:
    """Record ids and metadata keys of the app's Chroma collection."""

    template: str
    user_key: str
    note_key: str | None
    #: the app keeps the note's text as the record's document
    document: bool = False
    #: Constellation's own record format (escaped ids with the version, our metadata)
    ours: bool = False

    @classmethod
    def from_config(cls, config: LegacyConfig) -> Layout:
        layout = config.layout
        if layout is None:
            return cls("{userId}:{noteId}:v{version}", records.USER, records.NOTE, ours=True)
        return cls(layout.id, layout.user_key, layout.note_key, layout.document)

    @property
    def pattern(self) -> re.Pattern[str]:
        """The id template as a regular expression with one group per field."""
        parts = _FIELD.split(self.template)
        regex = "".join(
            f"(?P<{part}>.+?)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        )
        return re.compile(f"^{regex}$", re.DOTALL)

    def record_id(self, user_id: str, note_id: str, version: int) -> str:
        if self.ours:
            return records.record_id(user_id, note_id, version)
        return self.template.replace("{userId}", user_id).replace("{noteId}", note_id)

    def note_of(self, record_id: str, metadata: Mapping[str, object]) -> tuple[str, str] | None:
        """(user id, note id) of a stored record, or None when it does not fit the layout."""
        user = metadata.get(self.user_key)
        if not isinstance(user, str) or not user:
            return None
        if self.note_key is not None:
            note = metadata.get(self.note_key)
            return (user, str(note)) if isinstance(note, str | int) and note != "" else None
        match = self.pattern.match(record_id)
        if match is None:
            return None
        found = match.groupdict()
        if "userId" in found and found["userId"] != user:
            return None
        return user, found["noteId"]

    def problems(self, record_id: str, metadata: Mapping[str, object]) -> list[str]:
        """What keeps a record from fitting the layout (empty when it fits)."""
        found: list[str] = []
        if metadata.get(self.user_key) in (None, "") or not isinstance(
            metadata.get(self.user_key), str
        ):
            found.append(f"record {record_id!r} has no metadata key {self.user_key!r}")
        if self.note_key is not None:
            if metadata.get(self.note_key) in (None, ""):
                found.append(f"record {record_id!r} has no metadata key {self.note_key!r}")
        elif self.pattern.match(record_id) is None:
            found.append(f"record id {record_id!r} does not match the id {self.template!r}")
        return found

    def metadata(self, note: Note, version: int, text: str, model: str) -> dict[str, MetadataValue]:
        """The metadata written with a note's vector, as the app wrote it."""
        if self.ours:
            return records.metadata(note.job(version), records.content_hash(text, model), model)
        meta: dict[str, MetadataValue] = {self.user_key: note.user_id}
        if self.note_key is not None:
            meta[self.note_key] = note.id
        return meta

    def describe(self) -> str:
        if self.ours:
            return "Constellation's records (user:note:vN)"
        note = f", note id in {self.note_key!r}" if self.note_key else ""
        return f"ids {self.template!r}, user id in {self.user_key!r}{note}"


@dataclass(frozen=True)
class AppText:
    """The app's text preparation before embedding (see the module docstring)."""

    normalize: bool = True
    max_chars: int | None = None

    @classmethod
    def from_config(cls, config: LegacyConfig) -> AppText:
        return cls(config.preprocess.normalize, config.preprocess.max_chars)

    def describe(self) -> str:
        """The preparation in words."""
        cut = f", cut after {self.max_chars:,} characters" if self.max_chars else ""
        return f"{OURS}{cut}" if self.normalize else f"the raw text{cut}"

    def prepare(self, texts: Sequence[str], embedder: Embedder) -> list[str]:
        """Each text as the app embedded it; "" for a text with nothing to embed."""
        if self.normalize:
            cut = [t[: self.max_chars] for t in texts] if self.max_chars else list(texts)
            return [p.text for p in prepare(cut, embedder)]
        out = []
        for text in texts:
            text = text[: self.max_chars] if self.max_chars else text
            out.append(text if text.strip() else "")
        return out
