"""Version 1 on ONNX Runtime: exported once per machine, linked into every data folder, the
torch model's own vectors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from constellation.embedders import onnx
from constellation.embedders.onnx import OnnxEmbedder
from tests.support.model import MODEL, MODEL_PACKAGE, real_embedder

pytestmark = pytest.mark.model

TEXTS = [
    "the quick brown fox",
    "Python's for statement iterates over the items of any sequence, in order",
    "groceries: milk, eggs, a loaf of rye bread and two lemons",
]


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every export's target, in order (the real export still runs)."""
    targets: list[Path] = []
    real = onnx.export

    def counted(source: str, target: Path, quantize: str | None) -> Path:
        targets.append(target)
        return real(source, target, quantize)

    monkeypatch.setattr(onnx, "export", counted)
    return targets


def test_a_second_data_folder_links_the_machines_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exports: list[Path]
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONSTELLATION_MODEL_CACHE", str(cache))
    first = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=tmp_path / "a" / "models")
    vectors = first.embed(TEXTS)
    assert len(exports) == 1 and exports[0].parent == cache

    second = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=tmp_path / "b" / "models")
    assert np.array_equal(second.embed(TEXTS), vectors)
    assert len(exports) == 1  # no second export
    linked = tmp_path / "b" / "models" / MODEL / "model.onnx"
    assert linked.stat().st_ino == (exports[0] / "model.onnx").stat().st_ino
    assert not list(cache.glob("*.partial-*")) and not list((tmp_path / "b").glob("**/*.partial-*"))

    # the same vectors as the torch model, text by text
    torch_vectors = real_embedder().embed(TEXTS)
    assert np.all((vectors * torch_vectors).sum(axis=1) >= 0.9999)


def test_without_a_writable_cache_it_exports_into_the_data_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exports: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CONSTELLATION_MODEL_CACHE", str(blocker / "models"))
    data = tmp_path / "data" / "models"
    with caplog.at_level(logging.WARNING, logger="constellation.embedders.onnx"):
        vector = OnnxEmbedder(MODEL, package=MODEL_PACKAGE, cache_dir=data).embed(TEXTS[:1])
    assert exports[-1] == data / MODEL and (data / MODEL / "model.onnx").is_file()
    assert "cannot keep the ONNX export" in caplog.text
    assert vector.shape == (1, 384)
