"""What ``doctor`` reports: one section per row of the seed's troubleshooting table, each with
its figures and its findings; a finding names its evidence and the command to run next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "findings", "skipped"]


@dataclass(frozen=True)
class Finding:
    """One problem found, with the figures that show it and what to run next."""

    area: str
    problem: str
    evidence: dict[str, Any]
    next_command: str


@dataclass
class Area:
    """One row of the troubleshooting table, diagnosed."""

    key: str
    title: str
    #: the live figures it looked at
    figures: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: what is worth knowing but not a problem (a transient failure retried, a check skipped)
    notes: list[str] = field(default_factory=list)
    skipped: bool = False

    __json_properties__ = ("status",)

    @property
    def status(self) -> Status:
        if self.findings:
            return "findings"
        return "skipped" if self.skipped else "ok"

    def find(self, problem: str, next_command: str, **evidence: Any) -> None:
        self.findings.append(Finding(self.title, problem, evidence, next_command))


@dataclass
class DoctorReport:
    at: float
    plan: str
    environment: str
    areas: list[Area] = field(default_factory=list)
    #: the systems that could not be reached while diagnosing (the command then exits 4)
    unreachable: list[str] = field(default_factory=list)

    __json_properties__ = ("healthy", "findings")

    @property
    def findings(self) -> list[Finding]:
        return [finding for area in self.areas for finding in area.findings]

    @property
    def healthy(self) -> bool:
        return not self.findings
