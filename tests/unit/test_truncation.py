"""Cutting texts to the model's tokens, tokenizing only the texts that could be too long."""

from __future__ import annotations

from constellation.embedders.truncation import truncate


def test_only_long_or_non_ascii_texts_go_through_the_tokenizer() -> None:
    asked: list[str] = []

    def offsets(texts: list[str]) -> list[list[tuple[int, int]]]:
        asked.extend(texts)
        # one token per character here; the real tokenizer makes 15 of the 7 characters
        # "한국어 텍스트" (NFD splits each syllable into its jamo)
        return [[(i, i + 1) for i in range(len(text))] for text in texts]

    texts = ["short", "x" * 8, "y" * 9, "한국어 텍스트 abc"]
    result = truncate(texts, 8, offsets)
    assert asked == ["y" * 9, "한국어 텍스트 abc"]
    assert result == [("short", False), ("x" * 8, False), ("y" * 8, True), ("한국어 텍스트 ", True)]
