"""The demo's sample notes app, as it is before the migration: its notes table built from
Python's documentation, a judged query set drawn from its notes, and its old index filled by
inline embedding in the app's own layout and with its own text preparation (the plan's
``legacy`` section). ``constellation demo`` migrates it; ``demo --app-only`` stops here, so an
operator can take the phases by hand."""

from __future__ import annotations

import shlex
import shutil
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from constellation.errors import StateError
from constellation.migration.legacy.chroma import ChromaLegacy
from constellation.migration.source import Note, NotesSource, create_notes_table, insert_notes
from constellation.plan import Plan
from constellation.services import Services
from constellation.wiring.migration import Migration
from phases.checks.golden import judged_from_notes, write_golden
from phases.migrate.phase import Progress
from phases.sample_notes import sample_notes, search_phrases

#: a file the demo leaves in its data folder, so that running it again may start afresh
DEMO_MARKER = ".constellation-demo"
#: users the summaries name, with their notes, for a newcomer's first searches
NAMED_USERS = 3
#: the old index is written this many notes at a time (one inline embedding call each)
WRITE_CHUNK = 64


@dataclass
class SampleApp:
    """The sample app, built: its plan (with the judged query set), its notes, its systems."""

    plan: Plan
    notes: list[Note]
    migration: Migration
    source: NotesSource
    #: vectors in its old index
    old_vectors: int


@dataclass(frozen=True)
class AppSummary:
    """What ``demo --app-only`` built, and what to run next."""

    notes: int
    users: int
    source: str
    old_index: str
    old_vectors: int
    golden: str
    #: a few users with their notes, the most prolific first
    sample_users: dict[str, int] = field(default_factory=dict)
    next_commands: list[str] = field(default_factory=list)


def prepare_data_dir(plan: Plan, reset: bool) -> None:
    """The demo builds its own data. A folder a previous demo made is replaced; any other
    non-empty folder is refused (unless ``reset``): the demo never mixes into real data."""
    folder = plan.data_dir
    if folder.exists() and any(folder.iterdir()):
        if not (reset or (folder / DEMO_MARKER).exists()):
            raise StateError(
                f"the data folder {folder} is not empty and was not made by the demo",
                "run the demo with a plan in an empty folder, or add --reset to delete that folder first",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(
        "made by `constellation demo`; the demo replaces this folder\n"
    )


def build_app(
    plan: Plan,
    services: Services,
    *,
    notes: int,
    users: int,
    on_event: Callable[[str], None] = lambda _: None,
    on_progress: Progress | None = None,
    observe_query: Callable[[float], None] | None = None,
) -> SampleApp:
    """The app as it is today, in the plan's (prepared) data folder: ``notes`` notes of
    ``users`` users in its notes table, a judged query set, and its old index filled the old
    way. ``observe_query`` times the searches of its :class:`Migration`."""
    sample = sample_notes(notes, users)
    create_notes_table(plan.source_url, plan.source.table)
    source = NotesSource.from_plan(plan)
    insert_notes(source, sample)
    on_event(f"app: {len(sample):,} notes of {users} users in {plan.source_url}")
    plan = _judged(plan, sample)
    on_event(f"app: a judged query set for the quality gates in {plan.migration.quality.golden}")
    m = Migration(plan, services, observe_query=observe_query)
    legacy = m.legacy
    if not isinstance(legacy, ChromaLegacy):  # the demo's plan is the embedded default
        raise StateError(f"the demo runs on the chroma old system, not {plan.legacy.adapter}")
    legacy.create()  # the app's first day: its own, empty collection

    def write(chunk: list[Note]) -> int:
        legacy.write_many(chunk)
        return len(chunk)

    chunks = [sample[i : i + WRITE_CHUNK] for i in range(0, len(sample), WRITE_CHUNK)]
    # The app's machines write at once, as many as the model has streams: it serves each call
    # on one stream with its share of the cores, so one writer after another would leave the
    # other cores idle.
    writers = plan.model(plan.legacy.model_version).streams
    with ThreadPoolExecutor(writers, thread_name_prefix="app-writer") as pool:
        for written in pool.map(write, chunks):
            if on_progress:
                on_progress("old index (inline embedding)", len(sample), written)
    vectors = legacy.count()
    on_event(f"app: old index {plan.legacy.name} filled the old way, {vectors:,} vectors")
    return SampleApp(plan, sample, m, source, vectors)


def app_only(
    plan: Plan,
    services: Services,
    *,
    notes: int,
    users: int,
    reset: bool = False,
    on_event: Callable[[str], None] = lambda _: None,
    on_progress: Progress | None = None,
) -> AppSummary:
    """Build the sample app only, for an operator to migrate by hand."""
    prepare_data_dir(plan, reset)
    app = build_app(
        plan, services, notes=notes, users=users, on_event=on_event, on_progress=on_progress
    )
    golden = str(app.plan.migration.quality.golden)
    user, text = try_query(app.notes)
    summary = AppSummary(
        notes=len(app.notes),
        users=users,
        source=plan.source_url,
        old_index=plan.legacy.name,
        old_vectors=app.old_vectors,
        golden=golden,
        sample_users=named_users(app.notes),
        next_commands=[
            "constellation provision",
            "constellation migrate phase 1 --wait",
            f"constellation query {shlex.quote(text)} --user {user}",
            f"constellation check quality --golden {golden}",
            "constellation migrate phase 2 --auto",
        ],
    )
    app.migration.close()
    app.source.close()
    return summary


def named_users(notes: list[Note], count: int = NAMED_USERS) -> dict[str, int]:
    """The ``count`` users with the most notes, and their notes."""
    return dict(Counter(n.user_id for n in notes).most_common(count))


def try_query(notes: list[Note]) -> tuple[str, str]:
    """A (user, search) a newcomer may try: a few words from a note of the most prolific user,
    so the search finds that note."""
    (user,) = named_users(notes, 1)
    return next((u, text) for u, text in search_phrases(notes) if u == user)


def _judged(plan: Plan, sample: list[Note]) -> Plan:
    """The plan with a judged query set built from the sample app (the demo's own plan: its
    quality bound is then checked before each phase 2 step and at phase 3)."""
    count = max(10, min(40, len(sample) // 3))
    path = write_golden(plan.data_dir / "golden.jsonl", judged_from_notes(sample, count))
    migration = plan.migration
    # The sample app's old system prepares text its own way, so the two systems rank a few
    # queries differently; on a small judged set one query one place lower moves nDCG by
    # several hundredths. The demo allows one query's worth (1 / queries) beside the plan's.
    tolerance = max(migration.quality.tolerance, round(1 / count, 3))
    quality = migration.quality.model_copy(update={"golden": path, "tolerance": tolerance})
    return plan.model_copy(update={"migration": migration.model_copy(update={"quality": quality})})
