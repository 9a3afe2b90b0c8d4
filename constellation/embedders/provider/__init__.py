"""An embedding provider over HTTP: any OpenAI-compatible ``POST /v1/embeddings``.

:class:`HttpEmbedder` is the model of a plan version with ``backend: http``. The worker's
batches go through its :class:`~.dispatch.Dispatcher` (full requests, a few in flight, within
``deadline``); searches through :meth:`HttpEmbedder.for_queries`, one request each on the
caller's thread within ``query_deadline``. Both share one :class:`~.session.ProviderSession`:
its limits, its circuit breaker and what it measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from constellation.embedders.provider.dispatch import Dispatcher, embed_texts
from constellation.embedders.provider.limits import limits_bound
from constellation.embedders.provider.session import ProviderReport, ProviderSession
from constellation.errors import InputsRejected, ProviderUnavailable
from constellation.plan.provider import ProviderConfig

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HttpEmbedder", "ProviderReport", "QueryEmbedder"]


class HttpEmbedder:
    """The worker's embedder for one provider; also the worker's :class:`Upstream`."""

    def __init__(
        self,
        name: str,
        *,
        provider: ProviderConfig,
        dimensions: int = 384,
        normalize: bool = True,
        session: ProviderSession | None = None,
        plan_field: str = "models.<version>",
    ) -> None:
        self.model_id = name
        self.dimension = dimensions
        self.normalize = normalize
        self.config = provider
        self.session = session or ProviderSession(
            provider, model=provider.model or name, dimensions=dimensions, plan_field=plan_field
        )
        self._dispatcher = Dispatcher(self.session)

    @property
    def name(self) -> str:
        """The provider as messages name it: its endpoint, masked."""
        return self.session.wire.where

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Every text's vector, within the plan's ``deadline``.

        Raises :class:`~constellation.errors.ProviderUnavailable` (not the texts' fault: the
        worker gives their jobs back) or :class:`~constellation.errors.InputsRejected`."""
        deadline = self.session.clock() + self.config.deadline
        try:
            return _unit(self._dispatcher.embed(texts, deadline), self.normalize)
        except InputsRejected as exc:
            exc.vectors = _unit(exc.vectors, self.normalize)
            raise

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        """Cut at ``max_input_chars`` when the plan sets it (the provider counts its own
        tokens; beyond its limit it cuts, or refuses the text with a reason)."""
        return _cut(texts, self.config.max_input_chars)

    def for_queries(self) -> QueryEmbedder:
        """The same provider for searches: one request each, within ``query_deadline``."""
        return QueryEmbedder(self)

    # the worker's Upstream ----------------------------------------------------------------------
    def available(self) -> bool:
        """Whether jobs can be sent now; while the breaker is open, probes when one is due."""
        breaker = self.session.breaker
        if breaker.closed:
            return True
        return breaker.probe_due() and self.session.probe()

    def outage(self) -> str | None:
        """Why the provider is out (None while it serves)."""
        state = self.session.breaker.snapshot()
        if state.state == "closed":
            return None
        since = f" for {state.open_for:.0f}s" if state.open_for is not None else ""
        return f"embedding provider {self.name} unavailable{since}: {state.reason}"

    def ready(self) -> str:
        """One line saying the provider serves (asked once if nothing was asked yet, probed
        when a probe is due); raises :class:`ProviderUnavailable` saying why not."""
        if self.session.report().requests == 0:
            self.for_queries().embed(["readiness check"])
        if not self.available():
            raise ProviderUnavailable(self.outage() or f"embedding provider {self.name} is out")
        report = self.session.report()
        latency = f", {report.latency_ms:,.0f} ms" if report.latency_ms is not None else ""
        return f"{self.name}: answering{latency}"

    def report(self) -> ProviderReport:
        return self.session.report()

    def limits_bound(self, texts: Sequence[str]) -> tuple[float, str] | None:
        """Texts per second our limits allow for texts like ``texts`` (see
        :func:`~.limits.limits_bound`), and which limit it is; None without limits."""
        chars = sum(len(t) for t in texts) / max(len(texts), 1)
        return limits_bound(
            requests_per_minute=self.config.requests_per_minute,
            tokens_per_minute=self.config.tokens_per_minute,
            texts_per_request=self.config.texts_per_request,
            tokens_per_text=chars / self.config.chars_per_token,
        )

    def close(self) -> None:
        self.session.close()


class QueryEmbedder:
    """An :class:`HttpEmbedder`'s provider for searches (see :meth:`HttpEmbedder.for_queries`)."""

    def __init__(self, embedder: HttpEmbedder) -> None:
        self.model_id = embedder.model_id
        self.dimension = embedder.dimension
        self._embedder = embedder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        e = self._embedder
        deadline = e.session.clock() + e.config.query_deadline
        vectors, refused = embed_texts(e.session, texts, deadline, trip_on_deadline=False)
        vectors = _unit(vectors, e.normalize)
        if refused:
            raise InputsRejected(refused, vectors)
        return vectors

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        return self._embedder.truncate(texts)


def _unit(vectors: np.ndarray, normalize: bool) -> np.ndarray:
    """Rows scaled to length 1 (providers mostly do; not all, and not always)."""
    import numpy as np

    if not normalize or not len(vectors):
        return vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _cut(texts: Sequence[str], limit: int | None) -> list[tuple[str, bool]]:
    if limit is None:
        return [(text, False) for text in texts]
    return [(text[:limit], len(text) > limit) for text in texts]
