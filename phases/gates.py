"""Gates between migration steps: named checks with the measured value and the bound.

A gate passes when every check passes. Each phase's exit gate, and phase 2's gate before every
traffic step, is built here from live values so ``migrate status`` shows the same checks the
phase commands enforce.
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation.migration.comparisons import ComparisonSummary
from constellation.plan import TrafficConfig
from constellation.queues.port import QueueDepth
from phases.consistency import ConsistencyReport


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    value: str
    bound: str


@dataclass(frozen=True)
class Gate:
    name: str
    checks: list[GateCheck]

    __json_properties__ = ("passed",)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failing(self) -> str:
        """One line naming each failing check with its value and bound."""
        return "; ".join(
            f"{c.name}: {c.value} (needs {c.bound})" for c in self.checks if not c.passed
        )


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.3f}{unit}" if unit == "" else f"{value:.0f}{unit}"


def consistency_check(report: ConsistencyReport | None) -> GateCheck:
    if report is None:
        return GateCheck("consistency (mean top-K overlap)", False, "not run", "run it")
    return GateCheck(
        "consistency (mean top-K overlap)",
        report.passed,
        f"{_fmt(report.mean)} over {report.checked} notes"
        + (f", {len(report.errors)} errors" if report.errors else ""),
        f">= {report.min_overlap}",
    )


def error_rate_check(summary: ComparisonSummary, bounds: TrafficConfig) -> GateCheck:
    """The candidate's share of failed searches among the comparisons."""
    rate = summary.new_error_rate
    return GateCheck(
        "candidate error rate",
        rate <= bounds.max_error_rate,
        f"{rate:.1%}",
        f"<= {bounds.max_error_rate:.1%}",
    )


def phase1_gate(
    depth: QueueDepth, dead_letters: QueueDepth, report: ConsistencyReport | None
) -> Gate:
    """Leave phase 1 when the backfill is drained, nothing is dead-lettered and results agree."""
    return Gate(
        "phase 1 exit",
        [
            GateCheck(
                "queue drained",
                depth.total == 0,
                f"{depth.visible} waiting, {depth.in_flight} in flight",
                "0",
            ),
            GateCheck(
                "dead-letter queue empty", dead_letters.total == 0, str(dead_letters.total), "0"
            ),
            consistency_check(report),
        ],
    )


def traffic_gate(
    summary: ComparisonSummary, bounds: TrafficConfig, service_error_rate: float | None = None
) -> Gate:
    """Before each phase 2 step: enough comparisons, overlap, candidate errors and latency."""
    checks = [
        GateCheck(
            "comparisons since the last step",
            summary.comparisons >= bounds.min_comparisons,
            str(summary.comparisons),
            f">= {bounds.min_comparisons}",
        ),
        GateCheck(
            "mean overlap",
            summary.mean_overlap is not None and summary.mean_overlap >= bounds.min_overlap,
            _fmt(summary.mean_overlap),
            f">= {bounds.min_overlap}",
        ),
        error_rate_check(summary, bounds),
        latency_check(summary, bounds),
    ]
    if service_error_rate is not None:
        checks.append(
            GateCheck(
                "worker error rate (monitoring)",
                service_error_rate <= bounds.max_error_rate,
                f"{service_error_rate:.1%}",
                f"<= {bounds.max_error_rate:.1%}",
            )
        )
    return Gate("traffic step", checks)


def latency_check(summary: ComparisonSummary, bounds: TrafficConfig) -> GateCheck:
    """The candidate's p95: under the plan's absolute bound, or (``max_p95_vs_old``) at most
    that many times the old system's p95 measured over the same searches, plus 5 ms."""
    new, old = summary.new_p95_ms, summary.old_p95_ms
    ratio = bounds.max_p95_vs_old
    if ratio is None:
        allowed: float | None = bounds.max_p95_latency_ms
        bound = f"<= {bounds.max_p95_latency_ms:.0f} ms"
    else:
        allowed = None if old is None else old * ratio + 5.0
        bound = f"<= old p95 x {ratio:g} + 5 ms" + (f" = {allowed:.0f} ms" if allowed else "")
    return GateCheck(
        "candidate p95 latency",
        new is not None and allowed is not None and new <= allowed,
        _fmt(new, " ms") if ratio is None else f"{_fmt(new, ' ms')} (old {_fmt(old, ' ms')})",
        bound,
    )


def cutover_checklist(
    report: ConsistencyReport | None,
    summary: ComparisonSummary,
    bounds: TrafficConfig,
    consumer_enabled: bool,
    depth: QueueDepth,
    dead_letters: QueueDepth,
    latency_tolerance: float,
) -> Gate:
    """Phase 3's verification checklist."""
    old, new = summary.old_p95_ms, summary.new_p95_ms
    allowed = None if old is None else old * (1 + latency_tolerance) + 5.0
    return Gate(
        "phase 3 verification",
        [
            consistency_check(report),
            GateCheck(
                "new p95 no worse than old",
                new is not None and allowed is not None and new <= allowed,
                f"new {_fmt(new, ' ms')}, old {_fmt(old, ' ms')}",
                f"<= old p95 x {1 + latency_tolerance:.2f} + 5 ms",
            ),
            error_rate_check(summary, bounds),
            GateCheck(
                "consumer enabled",
                consumer_enabled,
                "enabled" if consumer_enabled else "disabled",
                "enabled",
            ),
            GateCheck(
                "queue keeping up", depth.visible < 1000, f"{depth.visible} waiting", "< 1000"
            ),
            GateCheck(
                "dead-letter queue empty", dead_letters.total == 0, str(dead_letters.total), "0"
            ),
        ],
    )
