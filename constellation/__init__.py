"""Constellation: the queue-based embedding service and its adapters.

The app-side client is importable from here::

    from constellation import Client
    client = Client.from_plan("plans/local.yaml", env="staging")
    client.enqueue({"userId": "u1", "noteId": "n1", "text": "...", "created": 0, "version": 1})
    hits = client.query("groceries", user_id="u1")

    router = client.router()  # during the migration: writes and searches follow the state
    router.write(Note(id="n1", user_id="u1", content="buy milk", created=t0, updated=t1))

Attributes load lazily, so importing this package pulls in no boto3, chromadb or torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from constellation.client import Client, SearchResult
    from constellation.errors import ConstellationError
    from constellation.jobs import Job
    from constellation.migration.router import Router
    from constellation.migration.source import Note

__all__ = ["Client", "ConstellationError", "Job", "Note", "Router", "SearchResult"]

_LAZY = {
    "Client": "constellation.client",
    "SearchResult": "constellation.client",
    "ConstellationError": "constellation.errors",
    "Job": "constellation.jobs",
    "Note": "constellation.migration.source",
    "Router": "constellation.migration.router",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'constellation' has no attribute {name!r}")
