"""The embedder port: a model id, a dimension, and one method that embeds a batch.

Batching happens once, in the worker; an embedder embeds exactly the texts it is given, in one
model call. Models load on first use, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


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


def threads_per_stream(streams: int) -> int:
    """The CPU threads each of ``streams`` concurrent model calls gets: its share of the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, streams))
