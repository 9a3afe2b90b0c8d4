"""A model in processes of its own (constellation/embedders/processes.py): the same vectors and
cuts as in this process, a model error per text, and a clear error when a child is gone."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from constellation.embedders.processes import ModelProcesses
from constellation.errors import ModelError
from tests.fakes import RecordingEmbedder


def broken() -> RecordingEmbedder:
    raise RuntimeError("no such model folder")


@pytest.fixture(scope="module")
def processes():  # type: ignore[no-untyped-def]
    build = functools.partial(RecordingEmbedder, max_tokens=3, fail_on=("bad text",))
    model = ModelProcesses(build, model_id="fake-model", dimension=8, processes=2)
    yield model
    model.close()


def test_vectors_and_cuts_are_those_of_the_model_itself(processes: ModelProcesses) -> None:
    here = RecordingEmbedder(max_tokens=3)
    texts = ["one", "two words", "three words here", "four words are here"]
    assert np.allclose(processes.embed(texts), here.embed(texts))
    assert processes.truncate(texts) == here.truncate(texts)
    assert len(processes._children) == 2
    assert all(child._process.is_alive() for child in processes._children)


def test_a_model_error_is_a_model_error_here(processes: ModelProcesses) -> None:
    with pytest.raises(ModelError, match="bad text"):
        processes.embed(["fine", "bad text"])
    assert processes.embed(["fine"]).shape == (1, 8)  # the child carries on


def test_a_model_that_cannot_load_says_why() -> None:
    model = ModelProcesses(broken, model_id="fake-model", dimension=8, processes=1)
    with pytest.raises(ModelError, match="no such model folder"):
        model.embed(["text"])


def test_a_child_that_died_is_named() -> None:
    model = ModelProcesses(RecordingEmbedder, model_id="fake-model", dimension=8, processes=1)
    model.embed(["start"])
    model._children[0]._process.kill()
    model._children[0]._process.join(10)
    with pytest.raises(ModelError, match="model process"):
        model.embed(["text"])
    model.close()
