"""The benchmarks' corpus: notes cut from CPython's own documentation, and its description.

pydoc's help topics plus the docstrings of a fixed list of stdlib modules, split into paragraphs
and drawn with a fixed seed into notes of varied length, spread over ``USERS`` users. The same
Python version gives the same corpus, and a longer corpus starts with the shorter one.
"""

from __future__ import annotations

import importlib
import inspect
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from constellation.jobs import Job

SEED = 20240603
USERS = 20
BASE_CREATED_MS = 1_700_000_000_000
#: stdlib modules whose docstrings (module and public members) add to pydoc's help topics
DOC_MODULES = (
    "argparse",
    "collections",
    "csv",
    "dataclasses",
    "decimal",
    "difflib",
    "functools",
    "heapq",
    "inspect",
    "itertools",
    "json",
    "logging",
    "optparse",
    "pathlib",
    "pickle",
    "re",
    "shutil",
    "sqlite3",
    "string",
    "subprocess",
    "tarfile",
    "textwrap",
    "threading",
    "typing",
    "unittest",
    "urllib.parse",
    "zipfile",
)


def _documentation() -> Iterator[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        yield module.__doc__ or ""
        for attr, member in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(member, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(member) or inspect.isfunction(member):
                yield inspect.getdoc(member) or ""


def paragraphs() -> list[str]:
    """Paragraphs of CPython's own documentation, in a fixed order."""
    found = []
    for text in _documentation():
        for block in re.split(r"\n\s*\n", text):
            if len(block.strip()) >= 20:
                found.append(block.strip("\n"))
    return found


def build_corpus(count: int, seed: int = SEED) -> list[Job]:
    """``count`` notes: a quarter one-liners, most a paragraph, some long enough to truncate.

    Deterministic, and a longer corpus starts with the shorter one (same seed, drawn in order).
    """
    pool = paragraphs()
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        start = rng.randrange(len(pool))
        shape = rng.random()
        if shape < 0.25:  # a quick note: the first sentence of a paragraph
            text = re.split(r"(?<=[.:!?])\s", pool[start].strip(), maxsplit=1)[0][:200]
        elif shape < 0.70:
            text = pool[start]
        else:
            size = rng.randint(2, 3) if shape < 0.93 else rng.randint(4, 10)
            text = "\n\n".join(pool[start : start + size])
        jobs.append(
            Job(
                user_id=f"user-{rng.randrange(USERS):02d}",
                note_id=f"note-{i:06d}",
                text=text,
                created=BASE_CREATED_MS + i * 1000,
                version=1,
            )
        )
    return jobs


def long_corpus(count: int, seed: int = SEED) -> list[Job]:
    """``count`` notes, each one documentation paragraph of 120 to 1,500 characters (drawn with
    a fixed seed, repeating the pool when ``count`` exceeds it): every note is long enough to
    fill a forward pass, and many reach the model's 256 tokens."""
    pool = [text for text in paragraphs() if 120 <= len(text) <= 1500]
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    return [
        Job(
            user_id=f"user-{rng.randrange(USERS):02d}",
            note_id=f"long-{i:06d}",
            text=pool[order[i % len(order)]],
            created=BASE_CREATED_MS + i * 1000,
            version=1,
        )
        for i in range(count)
    ]


#: the corpora worker_throughput.py measures, by name
CORPORA = {"short": build_corpus, "long": long_corpus}


def describe_corpus(jobs: Sequence[Job], model: Any) -> dict[str, Any]:
    """Length distribution in characters and in the model's tokens."""
    texts = [job.text for job in jobs]
    tokens = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    limit = model.max_seq_length - 2
    return {
        "notes": len(jobs),
        "users": len({job.user_id for job in jobs}),
        "chars": _spread([len(text) for text in texts]),
        "tokens": _spread(tokens),
        "over_model_limit": sum(n > limit for n in tokens) / len(tokens),
        "model_limit_tokens": limit,
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": float(max(values)),
    }
