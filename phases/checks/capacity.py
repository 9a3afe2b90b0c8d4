"""``check capacity``: will the backfill finish in reasonable time, and will the index fit?

Before phase 1 sends every note through the queue: how many notes there are to embed, the
embedding rate measured here with the plan's real model on a sample of them, the backfill
time that follows, and the index's expected memory and disk (vectors x dimensions x 4 bytes x
an HNSW overhead factor measured on Chroma, plus a fixed part per record for ids, metadata and
graph links) beside what the machine has (``/proc/meminfo``'s MemAvailable, the free space of
the index's folder). A Chroma server's memory and disk cannot be seen from here: those checks
are then inconclusive, and say so. Phase 1 warns above ``warn_at`` of what is free and refuses
(without ``--force``) when the index will not fit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from constellation.embedders.port import Embedder
from constellation.embedders.provider import HttpEmbedder
from constellation.preprocess import Prepared, prepare
from constellation.wiring.migration import Migration
from phases.checks.gates import Gate, GateCheck, Outcome, combine


@dataclass(frozen=True)
class Footprint:
    """Bytes per record of an index: ``factor`` times the raw vector plus ``fixed`` bytes."""

    factor: float
    fixed: float

    def bytes(self, records: int, dimensions: int) -> int:
        return int(records * (dimensions * 4 * self.factor + self.fixed))


# Measured by benchmarks/index_footprint.py on chromadb 1.5.9 (embedded, cosine, HNSW defaults,
# our six metadata keys, 20,000 records at 384 and at 768 dimensions): see benchmarks/README.md.
CHROMA_DISK = Footprint(factor=2.06, fixed=830.0)
CHROMA_MEMORY = Footprint(factor=1.27, fixed=610.0)


def memory_available() -> int | None:
    """MemAvailable of ``/proc/meminfo`` in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def disk_free(path: Path) -> int | None:
    """Free bytes (for an unprivileged user) of the file system that holds ``path``."""
    for folder in (path, *path.parents):
        if folder.exists():
            stats = os.statvfs(folder)
            return stats.f_bavail * stats.f_frsize
    return None


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass(frozen=True)
class Machine:
    """What this machine has; tests inject their own figures."""

    memory: Callable[[], int | None] = memory_available
    disk: Callable[[Path], int | None] = disk_free


def measure_rate(
    embedder: Embedder, texts: Sequence[str], batch_size: int, concurrency: int = 1
) -> float:
    """Texts per second the model embeds here, in the worker's batches, ``concurrency`` of
    them at once (loaded beforehand, so the load is not counted)."""
    embedder.embed([texts[0]])
    batches = [list(texts[s : s + batch_size]) for s in range(0, len(texts), batch_size)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        list(pool.map(embedder.embed, batches))
    return len(texts) / max(time.perf_counter() - started, 1e-9)


@dataclass
class CapacityReport:
    notes: int
    #: records of this version already in the index (skipped by content hash when unchanged)
    stored: int
    to_embed: int
    #: notes embedded to measure the rate, and the rate (texts per second, one worker)
    sample: int
    rate: float | None
    backfill_seconds: float | None
    records_after: int
    dimensions: int
    memory_needed: int
    memory_available: int | None
    disk_needed: int
    disk_used: int
    disk_free: int | None
    location: str
    server: bool
    #: a provider's: the texts per second its limits allow, and which limit (None: no limit,
    #: or a local model); the backfill time uses the smaller of it and the measured rate
    limit_rate: float | None = None
    limited_by: str | None = None
    checks: list[GateCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    __json_properties__ = ("outcome",)

    @property
    def outcome(self) -> Outcome:
        return combine([c.outcome for c in self.checks if not c.dry_run])

    def gate(self) -> Gate:
        return Gate("capacity", self.checks)


def _gib(n: float) -> str:
    """Bytes in the largest binary unit that keeps a number of at least 1."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def check_capacity(
    m: Migration,
    *,
    version: int | None = None,
    rate: float | None = None,
    machine: Machine | None = None,
) -> CapacityReport:
    """Notes to backfill, this machine's embedding rate, the backfill time, and the index's
    memory and disk beside what is free. ``rate`` skips the measurement (tests).

    Through a provider, the rate is measured with the worker's batches in flight at once,
    and the backfill time is bounded by the provider's limits (requests and tokens per
    minute): it never promises what the limits would not let through."""
    config = m.plan.migration.capacity
    machine = machine or Machine()
    version = m.plan.default_version if version is None else version
    m.plan.declared([version], field="version")
    notes = m.source.count()
    store, name = m.services.store, m.plan.index_name_for(version)
    exists = store.inspect(name) is not None
    index = m.services.index(version) if exists else None
    stored = index.count(version=version) if index else 0
    total_now = index.count() if index else 0
    to_embed = max(notes - stored, 0)
    sample = 0
    bound: tuple[float, str] | None = None
    if rate is None and to_embed:
        texts = [p.text for p in _sample_texts(m, version, config.sample) if not p.empty]
        sample = len(texts)
        embedder = m.services.embedder(version)
        consumer = m.plan.consumer
        if texts and isinstance(embedder, HttpEmbedder):
            # a provider: the worker's batches in flight at once, and its limits' bound
            bound = embedder.limits_bound(texts)
            rate = measure_rate(embedder, texts, consumer.max_batch_size, consumer.max_concurrency)
        elif texts:
            rate = measure_rate(embedder, texts, consumer.max_batch_size)
    effective = min(rate, bound[0]) if rate and bound else rate
    dims = m.plan.model(version).dimensions
    records_after = total_now - stored + notes
    server = m.plan.index.url is not None
    location = m.plan.index.url or str(m.plan.index_path)
    used = 0 if server else folder_size(m.plan.index_path)
    report = CapacityReport(
        notes=notes,
        stored=stored,
        to_embed=to_embed,
        sample=sample,
        rate=rate,
        backfill_seconds=to_embed / effective if effective else None,
        records_after=records_after,
        dimensions=dims,
        memory_needed=CHROMA_MEMORY.bytes(records_after, dims),
        memory_available=None if server else machine.memory(),
        disk_needed=CHROMA_DISK.bytes(records_after, dims),
        disk_used=used,
        disk_free=None if server else machine.disk(m.plan.index_path),
        location=location,
        server=server,
        limit_rate=bound[0] if bound else None,
        limited_by=bound[1] if bound else None,
    )
    report.checks = _checks(report, config.warn_at, config.dry_run)
    return report


def _sample_texts(m: Migration, version: int, size: int) -> list[Prepared]:
    notes = m.source.sample(size, seed=1)
    return list(prepare([n.content for n in notes], m.services.embedder(version)))


def _checks(report: CapacityReport, warn_at: float, dry_run: bool) -> list[GateCheck]:
    """Memory and disk: fits (pass), does not (fail), or cannot be seen (inconclusive)."""
    unseen = "a Chroma server's memory and disk cannot be seen from here"
    checks = []
    for what, needed, free in (
        ("index memory", report.memory_needed, report.memory_available),
        ("index disk", max(report.disk_needed - report.disk_used, 0), report.disk_free),
    ):
        value = f"{_gib(needed)} needed for {report.records_after:,} records"
        if free is None:
            outcome: Outcome = "inconclusive"
            value += f"; {unseen}" if report.server else "; free space unknown"
            bound = "fits (not visible)"
        else:
            outcome = "pass" if needed <= free else "fail"
            value += f", {_gib(free)} free"
            bound = f"<= {_gib(free)} free"
            if outcome == "pass" and needed > warn_at * free:
                report.warnings.append(
                    f"{what}: the index would take {needed / free:.0%} of what is free "
                    f"({_gib(needed)} of {_gib(free)})"
                )
        checks.append(GateCheck(what, outcome, value, bound, dry_run=dry_run))
    return checks
