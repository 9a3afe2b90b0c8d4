"""``check consistency``: do the old and the new system find the same notes?

For a random sample of notes, each note's own text is searched within its user on both
systems; the overlap of the two top-K lists of noteIds (shared ids over the longer list) says
how alike they are. The report gives the mean, the minimum, a distribution and the notes below
the threshold. The same check compares two model versions (``--versions 1,2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

from constellation.errors import Unreachable
from constellation.ledger.comparisons import overlap
from constellation.ledger.notes import ConsistencyNote
from constellation.migration.source import Note, NotesSource
from constellation.query import SearchResult
from constellation.wiring.migration import Migration

Search = Callable[[str, str, int], list[SearchResult]]
#: progress callback: (what, total or None, advance by)
Progress = Callable[[str, int | None, int], None]
#: distribution buckets of the overlap, as labels
BUCKETS = ("< 0.5", "0.5–0.7", "0.7–0.9", "0.9–1.0", "1.0")
T = TypeVar("T")


@dataclass(frozen=True)
class NoteOverlap:
    user_id: str
    note_id: str
    overlap: float
    old_count: int
    new_count: int
    #: whether the note found itself first in the new system
    self_first: bool


@dataclass
class ConsistencyReport:
    sample_size: int
    min_overlap: float
    top_k: int
    checked: int = 0
    mean: float | None = None
    minimum: float | None = None
    distribution: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    low: list[NoteOverlap] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    __json_properties__ = ("passed", "outcome")

    @property
    def outcome(self) -> Literal["pass", "fail", "inconclusive"]:
        """Inconclusive when no note could be compared and nothing failed (no notes yet)."""
        if self.checked == 0 and not self.errors:
            return "inconclusive"
        return "pass" if self.passed else "fail"

    @property
    def passed(self) -> bool:
        return (
            self.checked > 0
            and self.mean is not None
            and self.mean >= self.min_overlap
            and not self.errors
        )


def _bucket(value: float) -> str:
    if value >= 1.0:
        return "1.0"
    if value >= 0.9:
        return "0.9–1.0"
    if value >= 0.7:
        return "0.7–0.9"
    return "0.5–0.7" if value >= 0.5 else "< 0.5"


def check_consistency(
    source: NotesSource,
    old_search: Search,
    new_search: Search,
    *,
    sample_size: int = 100,
    min_overlap: float = 0.7,
    top_k: int = 10,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
    at_once: int = 1,
) -> ConsistencyReport:
    """Compare both systems' top-K results for a sample of notes searched by their own text
    (``at_once`` notes at a time)."""
    report = ConsistencyReport(sample_size, min_overlap, top_k)
    overlaps: list[float] = []

    def both(note: Note) -> tuple[list[str], list[str]] | str:
        """The note's text searched on both systems: the two lists of note ids, or what
        failed (an unreachable system fails the whole check instead)."""
        try:
            old = [r.note_id for r in old_search(note.content, note.user_id, top_k)]
            new = [r.note_id for r in new_search(note.content, note.user_id, top_k)]
        except Unreachable:
            raise  # nothing to compare: the command ends with exit 4, not a failed check
        except Exception as exc:
            return f"{note.user_id}/{note.id}: {type(exc).__name__}: {exc}"
        return old, new

    notes = [n for n in source.sample(sample_size, seed=seed) if n.content.strip()]
    # A few notes at a time: the model serves calls on its streams, each with its share of the
    # cores, so one search after another would leave the other cores idle. Results keep the
    # sample's order.
    with ThreadPoolExecutor(max(1, at_once), thread_name_prefix="consistency") as pool:
        answers = list(_in_order(pool, both, notes, on_progress))
    for note, answer in zip(notes, answers, strict=True):
        if isinstance(answer, str):
            report.errors.append(answer)
            continue
        old, new = answer
        value = overlap(old, new)
        overlaps.append(value)
        report.distribution[_bucket(value)] += 1
        if value < min_overlap:
            report.low.append(
                NoteOverlap(
                    note.user_id,
                    note.id,
                    value,
                    len(old),
                    len(new),
                    bool(new) and new[0] == note.id,
                )
            )
    report.checked = len(overlaps)
    if overlaps:
        report.mean = sum(overlaps) / len(overlaps)
        report.minimum = min(overlaps)
    report.low.sort(key=lambda n: n.overlap)
    return report


def _in_order(
    pool: ThreadPoolExecutor,
    fn: Callable[[Note], T],
    notes: list[Note],
    on_progress: Callable[[int], None] | None,
) -> Iterator[T]:
    """``fn`` of each note on the pool, yielded in the notes' order, counting each as it ends."""
    for answer in pool.map(fn, notes):
        if on_progress:
            on_progress(1)
        yield answer


def consistency(m: Migration, on_progress: Progress | None = None) -> ConsistencyReport:
    """The plan's consistency check between the old system and the new index."""
    return consistency_between(m, on_progress=on_progress)


def consistency_between(
    m: Migration,
    *,
    sample_size: int | None = None,
    min_overlap: float | None = None,
    top_k: int | None = None,
    versions: tuple[int, int] | None = None,
    on_progress: Progress | None = None,
) -> ConsistencyReport:
    """Compare old and new search on sampled notes (or two model versions of the new index)."""
    config = m.plan.migration.consistency
    size = config.sample_size if sample_size is None else sample_size
    old: Search = m.old_search
    new: Search = m.new_search
    if versions is not None:
        old, new = m.version_search(versions[0]), m.version_search(versions[1])
    total = min(size, m.source.count())
    return check_consistency(
        m.source,
        old,
        new,
        sample_size=size,
        min_overlap=config.min_overlap if min_overlap is None else min_overlap,
        top_k=config.top_k if top_k is None else top_k,
        on_progress=(lambda n: on_progress("consistency check", total, n)) if on_progress else None,
        at_once=m.plan.model(m.plan.default_version).streams,
    )


def consistency_note(report: ConsistencyReport) -> ConsistencyNote:
    """What the state keeps of a consistency check (``migrate status`` shows it)."""
    return ConsistencyNote(
        mean=report.mean,
        minimum=report.minimum,
        checked=report.checked,
        min_overlap=report.min_overlap,
        passed=report.passed,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
