"""Adapters chosen by a short name in the plan, imported only when first used.

Keeping the registry as strings means ``constellation --help`` and plan validation never
import boto3, chromadb or torch. A misspelt name gets the closest valid one suggested.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from constellation.errors import AdapterError

#: port → short name → "module:attribute"
REGISTRY: dict[str, dict[str, str]] = {
    "queue": {
        "sqlite": "constellation.queues.sqlite:SqliteBroker",
        "sqs": "constellation.queues.sqs:SqsBroker",
    },
    "index": {
        "chroma": "constellation.index.chroma:ChromaStore",
    },
    "embedder": {
        "sentence-transformers": "constellation.embedders.sentence_transformers:SentenceTransformerEmbedder",
        "onnx": "constellation.embedders.onnx:OnnxEmbedder",
        "http": "constellation.embedders.provider:HttpEmbedder",
    },
    "legacy": {
        "chroma": "constellation.migration.legacy.chroma:ChromaLegacy",
        "pgvector": "constellation.migration.legacy.pgvector:PgvectorLegacy",
    },
}


def names(port: str) -> list[str]:
    """The short names a plan may use for ``port``."""
    return sorted(REGISTRY[port])


def suggestion(name: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``name``, else an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_name(port: str, name: str) -> str:
    """Return ``name`` if ``port`` has such an adapter, else raise with the choices."""
    choices = names(port)
    if name in REGISTRY[port] or (port == "legacy" and ":" in name):
        return name
    raise AdapterError(
        f"unknown {port} adapter {name!r}{suggestion(name, choices)}; "
        f"choose one of: {', '.join(choices)}"
    )


def load(port: str, name: str) -> Any:
    """Import and return the class (or object) registered as ``name`` for ``port``.

    For the legacy port an operator may also name their own object as ``module:object``.
    """
    target = REGISTRY[port].get(name) or (name if ":" in name else None)
    if target is None:
        check_name(port, name)
        raise AssertionError("unreachable")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(
            f"{port} adapter {name!r} cannot be imported: {exc}",
            "install Constellation with its dependencies (see README)",
        ) from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise AdapterError(f"{module_name} has no attribute {attribute!r}") from exc
