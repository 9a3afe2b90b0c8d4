"""The embedder port: a model id, a dimension, and one method that embeds a batch.

Batching happens once, in the worker; an embedder embeds exactly the texts it is given, in one
model call. Models load on first use, never at import.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


log = logging.getLogger("constellation.model")
#: a first use that took longer than this (seconds) was a load, and is logged
LOAD_NOTICE = 0.05
#: the text :func:`load_model` has the model cut to its tokens (a tokenizer call loads it)
LOAD_PROBE = "load"


@runtime_checkable
class Embedder(Protocol):
    #: the model name stored in each record's metadata
    model_id: str
    #: the vector length the model produces
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, as a float32 array of shape (len(texts), dimension)."""
        ...

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        """Each text cut to the model's maximum sequence length in tokens, and whether it was cut."""
        ...


@runtime_checkable
class Upstream(Protocol):
    """A model served by someone else over the network (an embedding provider), which can be
    out for a while. While it is, the worker receives nothing: its jobs wait on the queue."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]: ...

    def for_queries(self) -> Embedder:
        """The same model for searches, within their own (shorter) deadline."""
        ...

    def available(self) -> bool:
        """Whether jobs can be sent now; while it is out, probes it when a probe is due."""
        ...

    def outage(self) -> str | None:
        """Why it is out, one line (None while it serves)."""
        ...

    def close(self) -> None: ...


#: what runs around a model's first load: ``loading(model_id)`` is a context manager (the CLI
#: shows a spinner in it); embedders carry one as their ``loading`` attribute
Loading = Callable[[str], AbstractContextManager[object]]


def no_notice(_model_id: str) -> AbstractContextManager[object]:
    """The default :data:`Loading`: nothing to show."""
    return nullcontext()


def load_model(embedder: Embedder) -> float:
    """Load the embedder's model now if it is not loaded yet; the seconds this took (next to
    nothing once loaded). What times the model's work (a search, a batch) calls it first, so
    that no query latency or batch time counts a model's load: the load is its own figure."""
    started = time.perf_counter()
    embedder.truncate([LOAD_PROBE])  # loads a local model (its tokenizer); a provider has none
    took = time.perf_counter() - started
    if took > LOAD_NOTICE:
        log.debug("model %s loaded in %.1f s", embedder.model_id, took)
    return took


def threads_per_stream(streams: int) -> int:
    """The CPU threads each of ``streams`` concurrent model calls gets: its share of the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, streams))
