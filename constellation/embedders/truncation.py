"""Cutting texts to a model's token budget, from the tokenizer's character offsets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


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


def truncate(
    texts: Sequence[str],
    limit: int,
    offsets: Callable[[list[str]], Iterable[Sequence[tuple[int, int]]]],
) -> list[tuple[str, bool]]:
    """Each text cut to ``limit`` tokens, tokenizing only the texts that could exceed it.

    In ASCII text every token the tokenizer makes covers at least one character of its own, so
    an ASCII text of at most ``limit`` characters has at most ``limit`` tokens and is returned
    as it is, without the tokenizer (most notes are short: this is most of a batch). Not so
    beyond ASCII: normalisation can split one character into several tokens (a Hangul syllable
    into its jamo), so those texts always go through the tokenizer. ``offsets`` tokenizes a
    list of texts into their token spans.
    """
    result = [(text, False) for text in texts]
    long = [i for i, text in enumerate(texts) if len(text) > limit or not text.isascii()]
    if long:
        cut = cut_to_tokens([texts[i] for i in long], offsets([texts[i] for i in long]), limit)
        for i, piece in zip(long, cut, strict=True):
            result[i] = piece
    return result
