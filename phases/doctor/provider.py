"""The embedding provider: an outage, a refused key, the wrong dimension, slow answers, rate
limits nearly used up, and what the workers saw (jobs given back, breakers open)."""

from __future__ import annotations

from constellation.errors import ProviderUnavailable
from constellation.monitoring.stats import ServiceStats
from constellation.wiring.migration import Migration
from phases.doctor.report import Area
from phases.operate.provider import check_providers

#: a rate limit with less than this share left is a finding
LOW_HEADROOM = 0.1

_NEXT = {
    "key refused": "set the key the plan reads (models.<v>.provider.api_key), then "
    "constellation verify",
    "dimension": "fix models.<v>.dimensions (or the provider's model), then constellation verify",
    "refused": "check models.<v>.provider (url, model), then constellation verify",
}


def diagnose_provider(m: Migration, stats: ServiceStats) -> Area:
    """One request to each provider, beside what the workers recorded."""
    area = Area("provider", "embedding provider: an outage or its rate limits")
    checks = check_providers(m.plan, m.services)
    area.figures = {f"v{c.version}": c.detail for c in checks}
    area.figures["jobs given back during outages"] = stats.jobs.deferred
    for check in checks:
        config = m.plan.model(check.version).provider
        assert config is not None  # a provider's version has its section
        if check.kind in _NEXT:
            area.find(
                f"model v{check.version}: {check.problem}",
                _NEXT[check.kind].replace("<v>", str(check.version)),
                version=check.version,
            )
        elif not check.ok:  # out of reach, failing, too slow: the system itself is out
            raise ProviderUnavailable(
                f"model v{check.version}: {check.problem}", kind=check.kind or "unreachable"
            )
        elif check.latency_ms is not None and check.latency_ms > config.query_deadline * 500:
            area.find(
                f"model v{check.version}: the provider took {check.latency_ms:,.0f} ms for "
                f"one text, over half of a search's {config.query_deadline:g}s",
                "constellation stats",
                version=check.version,
            )
        left = _headroom(check.version, m)
        if left is not None and left < LOW_HEADROOM:
            area.find(
                f"model v{check.version}: {check.headroom}: the provider's rate limit is "
                "nearly used up",
                f"lower models.{check.version}.provider.requests_per_minute (or "
                "tokens_per_minute) below the provider's limit, or ask it for more",
                version=check.version,
            )
    for version in stats.providers_unavailable:
        area.find(
            f"a worker reports the provider of model v{version} unavailable: it has stopped "
            "receiving (the jobs wait on the queue) and probes it",
            "constellation verify",
            version=version,
        )
    if not checks:
        area.skipped = True
        area.notes.append("no model version of the plan embeds through a provider")
    return area


def _headroom(version: int, m: Migration) -> float | None:
    """The smaller share left of the provider's request and token limits (None: unknown)."""
    from constellation.embedders.provider import HttpEmbedder

    embedder = m.services.embedder(version)
    if not isinstance(embedder, HttpEmbedder):
        return None
    limits = embedder.report().limits
    shares = [
        left / limit
        for left, limit in (
            (limits.remaining_requests, limits.limit_requests),
            (limits.remaining_tokens, limits.limit_tokens),
        )
        if left is not None and limit
    ]
    return min(shares) if shares else None
