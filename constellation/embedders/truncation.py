"""Cutting texts to a model's token budget, from the tokenizer's character offsets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def cut_to_tokens(
    texts: Sequence[str], offsets: Iterable[Sequence[tuple[int, int]]], limit: int
) -> list[tuple[str, bool]]:
    """Each text cut after its ``limit``-th token, and whether it was cut.

    ``offsets`` are each text's token spans (start, end) in characters, from a tokenizer run
    without special tokens and without truncation.
    """
    result = []
    for text, spans in zip(texts, offsets, strict=True):
        if len(spans) <= limit:
            result.append((text, False))
        else:
            result.append((text[: spans[limit - 1][1]], True))
    return result
