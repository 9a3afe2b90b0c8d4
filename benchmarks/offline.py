"""The environment every benchmark sets before torch, transformers or chromadb are imported:
the model from site-packages only, quiet libraries, Chroma's telemetry off."""

from __future__ import annotations

import os

QUIET_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
}


def quiet_offline(**extra: str) -> None:
    """Set :data:`QUIET_OFFLINE` (and ``extra``) where the caller's environment has not."""
    for name, value in {**QUIET_OFFLINE, **extra}.items():
        os.environ.setdefault(name, value)
