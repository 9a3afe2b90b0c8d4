"""The vectors an embedder gave lately, so that one process embeds the same text once.

The checks search the same texts again and again: phase 1 and phase 3 both run the
consistency check (each sampled note's text searched on both systems) and the recall check
(the sampled users' notes embedded again for the exact search), and every phase 2 step
measures the judged query set. A model gives the same vector for the same text, so these
searches take it from here after the first time.

Only what reads the model's answer goes through here (query embeddings, the recall check's
exact side). What measures the model (the worker's batches, the capacity check, ``tune``,
``doctor``'s timing) calls the embedder itself. The memo belongs to one embedder object, never
to a model name: two embedders are never mixed up, even if a test gives them one name.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from constellation.embedders.port import Embedder

if TYPE_CHECKING:
    import numpy as np

#: vectors kept per embedder: 8,192 of 384 float32 is 12 MiB
SIZE = 8192


class Memo:
    """The last :data:`SIZE` vectors of one embedder, by a digest of their text."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        #: texts answered from here, and texts sent to the model
        self.hits = 0
        self.misses = 0

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """One vector per text: remembered ones from here, the others from one model call."""
        import numpy as np

        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    found[i] = vector
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = embedder.embed([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    found[i] = vector
                    self._vectors[keys[i]] = vector
                    self._vectors.move_to_end(keys[i])
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.stack([found[i] for i in range(len(texts))])


_MEMOS: weakref.WeakKeyDictionary[Embedder, Memo] = weakref.WeakKeyDictionary()
_MEMOS_LOCK = threading.Lock()


def memo_of(embedder: Embedder) -> Memo:
    """The memo of this embedder object (made on first use, gone with the embedder)."""
    with _MEMOS_LOCK:
        memo = _MEMOS.get(embedder)
        if memo is None:
            memo = _MEMOS[embedder] = Memo()
        return memo


def remembered(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """``embedder.embed(texts)``, each text embedded once per embedder object."""
    return memo_of(embedder).embed(embedder, texts)
