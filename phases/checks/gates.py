"""Gates between migration steps: named checks with the measured value, the bound and an
outcome.

Every check ends ``pass``, ``fail`` or ``inconclusive`` (not enough evidence to tell: too few
comparisons since the last step, a server whose disk cannot be seen). A check the plan marks
``dry_run`` is measured and shown but never decides. A gate fails when any deciding check
fails, else is inconclusive when any deciding check is, else passes (Argo Rollouts' analysis
runs decide the same way). Each phase's exit gate, and phase 2's gate before every traffic
step, is built here from live values so ``migrate status`` shows the same checks the phase
commands enforce.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from constellation.ledger.comparisons import ComparisonSummary
from constellation.plan import TrafficConfig
from constellation.queues.port import QueueDepth
from phases.checks.consistency import ConsistencyReport

Outcome = Literal["pass", "fail", "inconclusive"]
#: the exit code of each outcome, the same for every command (see README "Exit codes")
EXIT_CODES: dict[str, int] = {"pass": 0, "fail": 1, "inconclusive": 3}


def outcome_of(ok: bool) -> Outcome:
    """``pass`` or ``fail``, for a check that can always decide."""
    return "pass" if ok else "fail"


def combine(outcomes: Sequence[Outcome]) -> Outcome:
    """Fail if any fails, else inconclusive if any is, else pass."""
    if "fail" in outcomes:
        return "fail"
    return "inconclusive" if "inconclusive" in outcomes else "pass"


@dataclass(frozen=True)
class GateCheck:
    name: str
    outcome: Outcome
    value: str
    bound: str
    #: measured and shown, never deciding (the plan's ``dry_run: true`` for this check)
    dry_run: bool = False

    __json_properties__ = ("passed",)

    def __post_init__(self) -> None:
        if isinstance(self.outcome, bool):  # a caller that only knows pass or fail
            object.__setattr__(self, "outcome", outcome_of(self.outcome))

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def label(self) -> str:
        """The outcome as a table shows it: ``fail (dry run)`` for a check that does not decide."""
        return f"{self.outcome} (dry run)" if self.dry_run else self.outcome


@dataclass(frozen=True)
class Gate:
    name: str
    checks: list[GateCheck] = field(default_factory=list)

    __json_properties__ = ("outcome", "passed")

    @property
    def deciding(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.dry_run]

    @property
    def outcome(self) -> Outcome:
        return combine([c.outcome for c in self.deciding])

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def failing(self) -> str:
        """One line naming each failing deciding check with its value and bound."""
        return _listed(c for c in self.deciding if c.outcome == "fail")

    def pending(self) -> str:
        """One line naming each deciding check that could not decide yet."""
        return _listed(c for c in self.deciding if c.outcome == "inconclusive")

    def explain(self) -> str:
        """What kept the gate from passing: the failing checks, else the undecided ones."""
        return self.failing() if self.outcome == "fail" else self.pending()

    def with_checks(self, extra: Sequence[GateCheck]) -> Gate:
        return Gate(self.name, [*self.checks, *extra])


def _listed(checks: Iterable[GateCheck]) -> str:
    return "; ".join(f"{c.name}: {c.value} (needs {c.bound})" for c in checks)


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.3f}{unit}" if unit == "" else f"{value:.0f}{unit}"


def consistency_check(report: ConsistencyReport | None) -> GateCheck:
    if report is None:
        return GateCheck("consistency (mean top-K overlap)", "fail", "not run", "run it")
    return GateCheck(
        "consistency (mean top-K overlap)",
        report.outcome,
        f"{_fmt(report.mean)} over {report.checked} notes"
        + (f", {len(report.errors)} errors" if report.errors else ""),
        f">= {report.min_overlap}",
    )


def _judged(ok: bool, enough: bool) -> Outcome:
    """A check over the comparisons: undecided until there are enough of them."""
    return outcome_of(ok) if enough else "inconclusive"


def error_rate_check(
    summary: ComparisonSummary, bounds: TrafficConfig, *, enough: bool = True
) -> GateCheck:
    """The candidate's share of failed searches among the comparisons."""
    rate = summary.new_error_rate
    return GateCheck(
        "candidate error rate",
        _judged(rate <= bounds.max_error_rate, enough),
        f"{rate:.1%}",
        f"<= {bounds.max_error_rate:.1%}",
    )


def phase1_gate(
    depth: QueueDepth,
    dead_letters: QueueDepth,
    report: ConsistencyReport | None,
    extra: Sequence[GateCheck] = (),
) -> Gate:
    """Leave phase 1 when the backfill is drained, nothing is dead-lettered, results agree
    (and ``extra``: the new index's recall)."""
    return Gate(
        "phase 1 exit",
        [
            GateCheck(
                "queue drained",
                outcome_of(depth.total == 0),
                f"{depth.visible} waiting, {depth.in_flight} in flight",
                "0",
            ),
            GateCheck(
                "dead-letter queue empty",
                outcome_of(dead_letters.total == 0),
                str(dead_letters.total),
                "0",
            ),
            consistency_check(report),
            *extra,
        ],
    )


#: the name of the traffic gate's first check, whose count is the gate's evidence
COMPARISONS = "comparisons since the last step"


def traffic_gate(
    summary: ComparisonSummary,
    bounds: TrafficConfig,
    service_error_rate: float | None = None,
    extra: Sequence[GateCheck] = (),
) -> Gate:
    """Before each phase 2 step: enough comparisons, overlap, candidate errors and latency.

    Until the minimum of comparisons is reached the comparison checks are inconclusive, not
    failed: a quiet app is no evidence either way (their values are still shown)."""
    enough = summary.comparisons >= bounds.min_comparisons
    checks = [
        GateCheck(
            COMPARISONS,
            _judged(True, enough),
            str(summary.comparisons),
            f">= {bounds.min_comparisons}",
        ),
        GateCheck(
            "mean overlap",
            _judged(
                summary.mean_overlap is not None and summary.mean_overlap >= bounds.min_overlap,
                enough,
            ),
            _fmt(summary.mean_overlap),
            f">= {bounds.min_overlap}",
        ),
        error_rate_check(summary, bounds, enough=enough),
        latency_check(summary, bounds, enough=enough),
    ]
    if service_error_rate is not None:
        checks.append(
            GateCheck(
                "worker error rate (monitoring)",
                outcome_of(service_error_rate <= bounds.max_error_rate),
                f"{service_error_rate:.1%}",
                f"<= {bounds.max_error_rate:.1%}",
            )
        )
    return Gate("traffic step", [*checks, *extra])


def latency_check(
    summary: ComparisonSummary, bounds: TrafficConfig, *, enough: bool = True
) -> GateCheck:
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
        _judged(new is not None and allowed is not None and new <= allowed, enough),
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
    extra: Sequence[GateCheck] = (),
) -> Gate:
    """Phase 3's verification checklist (``extra``: recall and quality)."""
    old, new = summary.old_p95_ms, summary.new_p95_ms
    allowed = None if old is None else old * (1 + latency_tolerance) + 5.0
    return Gate(
        "phase 3 verification",
        [
            consistency_check(report),
            GateCheck(
                "new p95 no worse than old",
                outcome_of(new is not None and allowed is not None and new <= allowed),
                f"new {_fmt(new, ' ms')}, old {_fmt(old, ' ms')}",
                f"<= old p95 x {1 + latency_tolerance:.2f} + 5 ms",
            ),
            error_rate_check(summary, bounds),
            GateCheck(
                "consumer enabled",
                outcome_of(consumer_enabled),
                "enabled" if consumer_enabled else "disabled",
                "enabled",
            ),
            GateCheck(
                "queue keeping up",
                outcome_of(depth.visible < 1000),
                f"{depth.visible} waiting",
                "< 1000",
            ),
            GateCheck(
                "dead-letter queue empty",
                outcome_of(dead_letters.total == 0),
                str(dead_letters.total),
                "0",
            ),
            *extra,
        ],
    )
