"""The embedding providers of a plan, checked live: reachable, our key accepted, vectors of
the plan's length, how fast, and how much of their rate limits is left.

``verify`` shows one line per provider, ``doctor`` turns a problem into a finding. Each check
is one small request, within the provider's ``query_deadline``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from constellation.embedders.provider import HttpEmbedder
from constellation.errors import ProviderUnavailable
from constellation.plan import Plan
from constellation.services import Services

CHECK_TEXT = "constellation provider check"


@dataclass(frozen=True)
class ProviderCheck:
    """One provider, as one small request found it."""

    version: int
    model: str
    url: str
    ok: bool
    #: what went wrong, one line (None when it answered well)
    problem: str | None
    #: ProviderUnavailable's kind: "key refused", "dimension", "unreachable", ...
    kind: str | None
    latency_ms: float | None
    #: what the provider's ``x-ratelimit-*`` headers say is left (None: it sends none)
    headroom: str | None
    #: the limits kept on our side, as the plan sets them
    our_limits: str

    @property
    def detail(self) -> str:
        """One line: the problem, or the answer's figures."""
        if self.problem is not None:
            return self.problem
        left = self.headroom or "no rate-limit headers sent"
        return (
            f"{self.url} ({self.model}): answers in {self.latency_ms:,.0f} ms; {left}; "
            f"our limits: {self.our_limits}"
        )


def provider_versions(plan: Plan) -> list[int]:
    """The plan's model versions served by a provider over HTTP."""
    return [v for v, model in sorted(plan.models.items()) if model.backend == "http"]


def check_providers(plan: Plan, services: Services) -> list[ProviderCheck]:
    """One small request to each provider of the plan."""
    checks = []
    for version in provider_versions(plan):
        embedder = services.embedder(version)
        if isinstance(embedder, HttpEmbedder):
            checks.append(check_provider(version, embedder))
    return checks


def check_provider(version: int, embedder: HttpEmbedder) -> ProviderCheck:
    config = embedder.config
    limits = [
        f"{n:,} {what}/min"
        for n, what in (
            (config.requests_per_minute, "requests"),
            (config.tokens_per_minute, "tokens"),
        )
        if n
    ]
    ours = ", ".join(limits) or "none set"
    started = time.perf_counter()
    problem = kind = None
    try:
        embedder.for_queries().embed([CHECK_TEXT])
    except ProviderUnavailable as exc:
        problem, kind = str(exc), exc.kind
    latency = (time.perf_counter() - started) * 1000
    report = embedder.report()
    return ProviderCheck(
        version=version,
        model=report.model,
        url=report.url,
        ok=problem is None,
        problem=problem,
        kind=kind,
        latency_ms=None if problem else latency,
        headroom=report.limits.headroom(),
        our_limits=ours,
    )
