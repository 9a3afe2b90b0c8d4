"""A scripted provider for unit tests of our provider logic: a fake clock, and a wire whose
answers are whatever each test scripts (the real wire is tested with httpx's mock transport,
and everything against Infinity in tests/integration/test_provider_infinity.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from constellation.embedders.provider import HttpEmbedder
from constellation.embedders.provider.headers import RateHeaders
from constellation.embedders.provider.session import ProviderSession
from constellation.embedders.provider.wire import Answer, Failed
from constellation.plan import ProviderConfig


class Clock:
    """Monotonic seconds that move only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def vector(text: str, dimensions: int = 4) -> np.ndarray:
    v = np.arange(1, dimensions + 1, dtype=np.float32) * (1 + len(text))
    return v / np.linalg.norm(v)


class ScriptedWire:
    """Answers ``script(texts)``: a Failed to raise, an int for vectors of that width, or
    None for good vectors. Records every request's texts."""

    where = "http://provider.test/v1/embeddings"
    model = "m"

    def __init__(
        self,
        script: Callable[[Sequence[str]], Failed | int | None] = lambda texts: None,
        dimensions: int = 4,
    ) -> None:
        self.script = script
        self.dimensions = dimensions
        self.requests: list[list[str]] = []
        self._lock = threading.Lock()

    def post(self, texts: Sequence[str], timeout: float | None = None) -> Answer | Failed:
        with self._lock:
            self.requests.append(list(texts))
        outcome = self.script(texts)
        if isinstance(outcome, Failed):
            return outcome
        width = self.dimensions if outcome is None else outcome
        rows = np.stack([vector(t, width) for t in texts])
        return Answer(rows, None, RateHeaders(), 0.01)

    def close(self) -> None:
        pass


def provider(
    script: Callable[[Sequence[str]], Failed | int | None] = lambda texts: None,
    *,
    clock: Clock | None = None,
    real_time: bool = False,
    dimensions: int = 4,
    **config: Any,
) -> tuple[HttpEmbedder, ScriptedWire, Clock]:
    """An HttpEmbedder on a scripted wire and a fake clock (``real_time``: the real one)."""
    clock = clock or Clock()
    wire = ScriptedWire(script, dimensions)
    settings = ProviderConfig(url="http://provider.test/v1", **config)
    session = ProviderSession(
        settings,
        model="m",
        dimensions=dimensions,
        clock=time.monotonic if real_time else clock,
        sleep=time.sleep if real_time else clock.sleep,
        wire=wire,  # type: ignore[arg-type]
    )
    embedder = HttpEmbedder("m", provider=settings, dimensions=dimensions, session=session)
    return embedder, wire, clock
