"""A sentence-transformers model exported to ONNX Runtime, optionally int8-quantized.

Both model versions we ship run here: version 1 is all-MiniLM-L6-v2 exported unquantized (the
same vectors as the torch model, cosine 1.000000, about 1.8 x its rate on a CPU, and ONNX
Runtime releases the GIL for a whole inference, so the index's writes cannot stall it); version
2 the same weights with ONNX Runtime's dynamic int8 quantization (faster still, at a small cost
in agreement, see ``benchmarks/model_versions.py``), a trade an operator makes with
``constellation model upgrade``.

The export runs once per machine, from the installed package (no download): into this
machine's cache (``$CONSTELLATION_MODEL_CACHE``, else ``~/.cache/constellation/models``), keyed
by the source's files and the libraries' versions, and is then linked into the data folder's
``models/<name>/``, so a fresh data folder (every demo, every test) costs a link, not 8 s of
torch.

Inference needs only ``onnxruntime`` and ``tokenizers``; torch is imported once, to export.
Pooling follows the model's own configuration: mean over tokens, then L2 normalization.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from constellation.embedders.port import Loading, no_notice, threads_per_stream
from constellation.embedders.sentence_transformers import _offline, model_folder
from constellation.embedders.truncation import truncate
from constellation.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(source: str, target: Path, quantize: str | None) -> Path:
    """Export the transformer of the sentence-transformers model at ``source`` to ONNX, into
    ``target`` (which gets its name only once complete)."""
    staging = _staging(target)
    try:
        _export_into(source, staging, quantize)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, target)
    return target


def _export_into(source: str, staging: Path, quantize: str | None) -> None:
    _offline()
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(source, device="cpu")
    transformer: Any = model[0].auto_model
    transformer.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    sample = model.tokenizer(
        ["an example", "another, longer example"], padding=True, return_tensors="pt"
    )
    fp32 = staging / "model-fp32.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    # The tracer warns about shapes it treats as constants; the export is verified against the
    # original model in the tests (cosine 1.0 unquantized), so its warnings are noise here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            tuple(sample[name] for name in _INPUTS),
            str(fp32),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    final = staging / "model.onnx"
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        was_disabled, root.disabled = root.disabled, True
        try:  # onnxruntime logs a pre-processing suggestion on the root logger; not for us
            quantize_dynamic(str(fp32), str(final), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.disabled = was_disabled
        fp32.unlink()
    else:
        fp32.rename(final)
    for name in ("tokenizer.json", "sentence_bert_config.json"):
        shutil.copy(Path(source) / name, staging / name)


def _staging(target: Path) -> Path:
    """An empty folder beside ``target`` to build it in, named for this process and thread:
    two processes writing one cache entry or data folder never share one."""
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, target: Path) -> None:
    """Give a complete folder its final name; only a complete folder ever has it. Where another
    process got there first its copy stays (a reader may be linking from it) and ours goes."""
    try:
        staging.rename(target)  # fails where the target exists and is not empty
        return
    except OSError:
        if not (target / "model.onnx").exists():
            raise  # not ours to remove: the error names the folder to delete
    shutil.rmtree(staging, ignore_errors=True)  # published by another process meanwhile


def machine_cache() -> Path | None:
    """This machine's cache of exports: ``$CONSTELLATION_MODEL_CACHE`` (empty: none), else
    ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``constellation/models``."""
    configured = os.environ.get("CONSTELLATION_MODEL_CACHE")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "constellation" / "models"


def _fingerprint(source: str, quantize: str | None) -> str:
    """Names one export: the source folder's files (path, size, modification time), the
    quantization and the versions of the libraries that export and quantize."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(f"quantize={quantize}\n".encode())
    for library in ("torch", "onnxruntime", "transformers"):
        try:
            digest.update(f"{library}={version(library)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{library}=none\n".encode())
    root = Path(source)
    for file in sorted(root.rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def ensure_export(source: str, folder: Path, quantize: str | None) -> None:
    """Give ``folder`` (which holds no export) the export of the model at ``source``: linked
    (or copied) from this machine's cache, exporting into the cache first when no data folder
    has yet. Without a writable cache it exports straight into ``folder``, as before the cache."""
    cache = machine_cache()
    if cache is not None:
        entry = cache / f"{folder.name}-{_fingerprint(source, quantize)}"
        try:
            if not (entry / "model.onnx").exists():
                export(source, entry, quantize)
        except OSError as exc:  # a read-only or full home: export where the data is
            logging.getLogger(__name__).warning(
                "cannot keep the ONNX export in %s (%s); exporting into %s", cache, exc, folder
            )
        else:
            _link_into(entry, folder)
            return
    export(source, folder, quantize)


def _link_into(entry: Path, folder: Path) -> None:
    """The cache entry's files in ``folder``: hard links where the file system allows (no copy
    of the model's bytes), copies otherwise; published whole, as an export is."""
    staging = _staging(folder)
    for file in entry.iterdir():
        try:
            os.link(file, staging / file.name)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(file, staging / file.name)
    _publish(staging, folder)


class OnnxEmbedder:
    """ONNX Runtime inference with mean pooling, for a model exported by :func:`export`."""

    def __init__(
        self,
        name: str,
        *,
        package: str | None = None,
        path: Path | None = None,
        dimensions: int = 384,
        normalize: bool = True,
        quantize: str | None = None,
        cache_dir: Path | None = None,
        device: str | None = None,
        streams: int = 2,
        loading: Loading = no_notice,
    ) -> None:
        self.model_id = name
        self.dimension = dimensions
        self.normalize = normalize
        self.quantize = quantize
        self._source = (name, package, path)
        self._folder = (cache_dir or Path("models")) / name
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None
        self._max_tokens = 256
        self._load_lock = threading.Lock()
        #: texts run through the session on this many threads at once, each with its share
        #: of the cores (as the sentence-transformers model's streams; the session is safe to
        #: run from several threads)
        self.streams = max(1, streams)
        self._calls = threading.BoundedSemaphore(self.streams)
        #: around the first load (and export): a spinner in the CLI
        self.loading = loading

    def _load(self) -> None:
        with self._load_lock:
            if self._session is not None:
                return
            with self.loading(self.model_id):
                self._load_now()

    def _load_now(self) -> None:
        """The first load, under the load lock: export once if needed, then open."""
        try:
            if not (self._folder / "model.onnx").exists():  # the package only to export
                ensure_export(model_folder(*self._source), self._folder, self.quantize)
            import onnxruntime
            from tokenizers import Tokenizer

            config = json.loads((self._folder / "sentence_bert_config.json").read_text())
            self._max_tokens = int(config.get("max_seq_length", 256))
            tokenizer = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
            tokenizer.enable_truncation(self._max_tokens)
            tokenizer.no_padding()  # the file pads to a fixed length; one text needs none
            counter = Tokenizer.from_file(str(self._folder / "tokenizer.json"))
            counter.no_truncation()
            counter.no_padding()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads_per_stream(self.streams)
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(self._folder / "model.onnx"),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(
                f"cannot prepare the ONNX model {self.model_id} in {self._folder}: {exc}",
                "check models.<version> in the plan; delete that folder and its entry in "
                f"{machine_cache() or 'the cache'} to export it again",
            ) from exc
        self._tokenizer, self._counter, self._session = tokenizer, counter, session

    @property
    def max_tokens(self) -> int:
        self._load()
        return self._max_tokens - 2

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        self._load()

        def offsets(long: list[str]) -> list[Any]:
            return [e.offsets for e in self._counter.encode_batch(long, add_special_tokens=False)]

        return truncate(texts, self.max_tokens, offsets)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text.

        Texts run through the session one at a time: dynamic int8 quantization scales the
        activations per tensor, so in a padded batch a text's vector would depend on its
        batch-mates (measured: cosine 0.985–0.994 to itself alone). One at a time, a text
        always gets the same vector, which the content-hash skip relies on, and with no
        padding to compute it is also about three times faster on a CPU.
        """
        import numpy as np

        self._load()
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        with self._calls:
            try:
                for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
                    vectors[row] = self._pool(encoding)
            except Exception as exc:
                raise ModelError(f"model {self.model_id} failed on a batch: {exc}") from exc
        return vectors

    def _pool(self, encoding: Any) -> np.ndarray:
        """Mean of the token vectors (the model's pooling), L2-normalized."""
        import numpy as np

        feed = {
            "input_ids": np.array([encoding.ids], dtype=np.int64),
            "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
        }
        (hidden,) = self._session.run(None, feed)
        vector = hidden[0].mean(axis=0)
        if self.normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector.astype(np.float32)
