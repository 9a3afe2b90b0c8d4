"""An app that is not Constellation: its notes table and its old index, written by its own code.

The notes live in the app's own table (``app_notes``: a text primary key, ``owner``, ``body``,
``created_at``/``updated_at`` as ``timestamptz`` on PostgreSQL, epoch milliseconds on
SQLite), written with plain SQL. Its search index is a Chroma collection in the app's layout
(record id = the note id, the user in ``owner``, a ``title`` of its own), written with plain
chromadb calls, each note's raw text embedded inline by the real model. The plan that
migrates it says all that and nothing else is arranged for it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from constellation.migration.source import Note
from tests.support.servers import ManagedServer

#: the plan's description of this app (the only thing Constellation is told)
COLUMNS = {
    "id": "id",
    "user": "owner",
    "content": "body",
    "created": "created_at",
    "updated": "updated_at",
}
LAYOUT = {"id": "{noteId}", "user_key": "owner", "note_key": None}


@dataclass
class RealApp:
    notes_url: str
    collection_name: str
    chroma_path: Path | None
    chroma_server: ManagedServer | None
    embedder: Any

    def __post_init__(self) -> None:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.chroma_server is not None:
            port = self.chroma_server.port
            self.client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=settings)
        else:
            self.client = chromadb.PersistentClient(path=str(self.chroma_path), settings=settings)
        # the app's own choice of collection: Chroma's defaults (l2 distance)
        self.collection = self.client.get_or_create_collection(self.collection_name)
        self.db = sa.create_engine(self.notes_url)
        self.pg = self.db.dialect.name == "postgresql"
        kind = "timestamptz" if self.pg else "BIGINT"
        with self.db.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE app_notes (id text PRIMARY KEY, owner text NOT NULL, "
                    f"body text NOT NULL, created_at {kind} NOT NULL, updated_at {kind})"
                )
            )

    def plan_sections(self) -> dict[str, Any]:
        """The plan's ``source`` and ``legacy`` sections for this app."""
        where: dict[str, Any] = (
            {"url": self.chroma_server.url}
            if self.chroma_server is not None
            else {"path": str(self.chroma_path)}
        )
        return {
            "source": {"url": self.notes_url, "table": "app_notes", "columns": COLUMNS},
            "legacy": {
                "adapter": "chroma",
                "name": self.collection_name,
                **where,
                "model_version": 1,
                "layout": LAYOUT,
                "preprocess": {"normalize": False, "max_chars": None},
            },
        }

    def _time(self, ms: int) -> Any:
        return datetime.fromtimestamp(ms / 1000, tz=UTC) if self.pg else ms

    def _index(self, notes: list[Note]) -> None:
        """The app's inline embedding: the raw text, straight into its collection."""
        vectors = self.embedder.embed([n.content for n in notes])
        self.collection.upsert(
            ids=[n.id for n in notes],
            embeddings=[[float(x) for x in v] for v in vectors],
            metadatas=[{"owner": n.user_id, "title": n.content[:30]} for n in notes],
        )

    def add(self, notes: list[Note]) -> None:
        """The app creating notes: its table, then its index."""
        with self.db.begin() as conn:
            for n in notes:
                conn.execute(
                    sa.text("INSERT INTO app_notes VALUES (:id, :owner, :body, :c, :u)"),
                    {
                        "id": n.id,
                        "owner": n.user_id,
                        "body": n.content,
                        "c": self._time(n.created),
                        "u": self._time(n.updated),
                    },
                )
        self._index(notes)

    def edit(self, note: Note, text: str) -> Note:
        """The app editing a note in its table (now); the caller then writes it via the router."""
        now = int(time.time() * 1000)
        with self.db.begin() as conn:
            conn.execute(
                sa.text("UPDATE app_notes SET body = :b, updated_at = :u WHERE id = :i"),
                {"b": text, "u": self._time(now), "i": note.id},
            )
        return replace(note, content=text, updated=now)

    def create(self, user: str, text: str) -> Note:
        """A note created in the app's table only (the router writes it to the indexes)."""
        now = int(time.time() * 1000)
        note = Note(f"new-{uuid.uuid4().hex[:8]}", user, text, now, now)
        with self.db.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO app_notes VALUES (:id, :owner, :body, :c, :u)"),
                {"id": note.id, "owner": user, "body": text, "c": self._time(now), "u": None},
            )
        return note

    def delete(self, note: Note) -> None:
        """The app deleting a note from its table."""
        with self.db.begin() as conn:
            conn.execute(sa.text("DELETE FROM app_notes WHERE id = :i"), {"i": note.id})

    def title(self, note_id: str) -> Any:
        """The app's own metadata key of a record (to see that it was left alone)."""
        found = self.collection.get(ids=[note_id], include=["metadatas"])
        return found["metadatas"][0].get("title") if found["ids"] else None

    def close(self) -> None:
        self.db.dispose()
        if self.chroma_server is not None:
            self.client.delete_collection(self.collection_name)
