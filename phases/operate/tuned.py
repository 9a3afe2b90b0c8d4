"""The last ``constellation tune`` result, kept in ``<data_dir>/tune.json`` for ``doctor``.

One writer (:func:`write_tuned`, called by :mod:`phases.operate.tune`) and one reader
(:func:`read_tuned`, called by ``doctor``'s backlog advice), so the two never disagree on the
file's shape: ``{"recommended": {"max_batch_size", "max_concurrency", "jobs_per_second"},
"measured_at", "version", "model", "trials": [...]}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = "tune.json"


@dataclass(frozen=True)
class Tuned:
    """What ``constellation tune`` measured and recommends for one worker."""

    max_batch_size: int
    max_concurrency: int
    jobs_per_second: float | None


def tuned_path(data_dir: Path) -> Path:
    return data_dir / FILE


def write_tuned(data_dir: Path, recommended: Tuned, details: Mapping[str, Any]) -> Path:
    """Store a tune result (written beside, then renamed: a reader never sees half a file)."""
    path = tuned_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "recommended": {
            "max_batch_size": recommended.max_batch_size,
            "max_concurrency": recommended.max_concurrency,
            "jobs_per_second": recommended.jobs_per_second,
        },
        **details,
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(body, indent=2) + "\n")
    partial.replace(path)
    return path


def read_tuned(data_dir: Path) -> Tuned | None:
    """The last tune result, or None when tune never ran (or its file cannot be read)."""
    try:
        data = json.loads(tuned_path(data_dir).read_text())
        best = data["recommended"]
        rate = best.get("jobs_per_second")
        return Tuned(
            int(best["max_batch_size"]),
            int(best["max_concurrency"]),
            float(rate) if rate is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
