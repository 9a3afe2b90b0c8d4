"""The embedding memo (issue 23): a text an embedder embedded lately is not embedded again by
the checks and the query path; what measures the model still calls it."""

from __future__ import annotations

import numpy as np

from constellation.embedders.memo import Memo, remembered
from constellation.query import embed_query
from tests.fakes import RecordingEmbedder


def test_a_text_is_embedded_once_and_misses_go_in_one_call() -> None:
    model = RecordingEmbedder()
    first = remembered(model, ["a", "b"])
    again = remembered(model, ["b", "c", "a"])
    assert model.batches == [["a", "b"], ["c"]]  # only the new text, in one call
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])
    assert np.array_equal(again[1], model.vector("c"))


def test_two_embedders_never_share_vectors_even_with_one_name() -> None:
    one, other = RecordingEmbedder("same-name"), RecordingEmbedder("same-name")
    remembered(one, ["x"])
    remembered(other, ["x"])
    assert one.batches == [["x"]] and other.batches == [["x"]]


def test_the_memo_keeps_the_most_recent_texts_only() -> None:
    model, memo = RecordingEmbedder(), Memo(size=2)
    memo.embed(model, ["a", "b"])
    memo.embed(model, ["a"])  # a is the most recent now
    memo.embed(model, ["c"])  # b goes
    memo.embed(model, ["a", "b"])
    assert model.batches == [["a", "b"], ["c"], ["b"]]
    assert (memo.hits, memo.misses) == (2, 4)


def test_a_query_is_embedded_once_unless_the_model_is_being_timed() -> None:
    model = RecordingEmbedder()
    embed_query("  the same   query ", model)
    embed_query("the same query", model)  # the same text once prepared
    assert model.texts == ["the same query"]
    embed_query("the same query", model, remember=False)  # doctor times the model itself
    assert model.texts == ["the same query", "the same query"]
