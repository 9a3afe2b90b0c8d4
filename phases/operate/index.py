"""``index migrate``: move an existing index to the plan's layout, while it stays in use.

The steps (see :mod:`constellation.index.relayout`): mark the move and create the target's
partitions, copy every record (resumable, partition by partition), catch up with the writes made
meanwhile, switch, and remove the old layout. Searches keep reading the old layout until the
switch; writers write both layouts from the start. Each waits ``grace`` seconds where a process
may still act on the layout it read last (the readers' refresh bound).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from constellation.index import relayout
from constellation.index.layout import Layout, layout_name
from constellation.index.partitioned import PartitionedStore
from constellation.plan import Plan
from constellation.services import Services
from phases.steps import Check, StepResult, run_steps

Progress = Callable[[str, int | None, int], None]


@dataclass
class IndexMove:
    """One index's move: its layout before and after, what was copied, and the steps."""

    index: str
    before: str
    after: str
    counts: relayout.MoveCounts = field(default_factory=relayout.MoveCounts)
    steps: list[StepResult] = field(default_factory=list)


@dataclass
class _Move:
    """What every step of one index's move shares."""

    store: PartitionedStore
    name: str
    target: int
    layout: Layout | None
    grace: float
    sleep: Callable[[float], None]
    on_progress: Progress | None
    counts: relayout.MoveCounts

    def needed(self, removing: bool) -> bool:
        """Whether a step is left: moving (start to switch), or removing the old layout."""
        layout = self.layout
        if layout is None:
            return False
        if layout.partitions != self.target or layout.moving_to is not None:
            return True
        return removing and layout.retired is not None

    def check(self, what: str, removing: bool) -> Check:
        if self.layout is None:
            return Check("unchanged", "not provisioned (nothing to move)")
        if not self.needed(removing):
            return Check("unchanged", f"already {layout_name(self.target)}")
        return Check("update", what)

    def advance(self, what: str, total: int | None) -> Callable[[int], None]:
        progress = self.on_progress
        return lambda n: progress(what, total, n) if progress else None

    def total(self) -> int:
        return sum(p.count() for p in relayout.source_partitions(self.store, self.name))


@dataclass
class _Step:
    move: _Move
    what: str
    action: Callable[[_Move], str]
    removing: bool = False

    @property
    def resource(self) -> str:
        return f"index {self.move.name}"

    def describe(self) -> str:
        return self.what

    def check(self) -> Check:
        return self.move.check(self.what, self.removing)

    def apply(self) -> str:
        return self.action(self.move)

    def undo(self) -> None:
        pass  # resumable: a re-run continues from the manifest


def _start(move: _Move) -> str:
    layout = relayout.start(move.store, move.name, move.target)
    move.sleep(move.grace)  # a write in progress finishes on the layout it read
    return f"writes go to both layouts; {layout.copied} partition(s) copied before"


def _copy(move: _Move) -> str:
    relayout.copy(
        move.store, move.name, counts=move.counts, advance=move.advance("copy", move.total())
    )
    return f"{move.counts.copied:,} records copied"


def _catch_up(move: _Move) -> str:
    advance = move.advance("compare", move.total())
    relayout.catch_up(move.store, move.name, counts=move.counts, advance=advance)
    return f"{move.counts.caught_up:,} caught up, {move.counts.removed:,} removed"


def _switch(move: _Move) -> str:
    relayout.switch(move.store, move.name)
    move.sleep(move.grace)  # readers still on the old layout follow within their bound
    return f"searches and writes use {layout_name(move.target)}"


def _remove(move: _Move) -> str:
    old = relayout.remove(move.store, move.name, advance=move.advance("remove old", None))
    return "nothing left to remove" if old is None else f"removed {layout_name(old)}"


def index_names(plan: Plan) -> list[str]:
    """Every index the plan's model versions use, the main one first."""
    return list(dict.fromkeys([plan.index.name, *(plan.index_name_for(v) for v in plan.models)]))


def migrate_index(
    plan: Plan,
    services: Services,
    *,
    dry_run: bool = False,
    grace: float | None = None,
    on_progress: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[IndexMove]:
    """Move every index of the plan to its layout (``index.partitions``); resumable."""
    store = services.store
    wait = store.refresh_seconds + 1.0 if grace is None else grace
    moves = []
    for name in index_names(plan):
        layout = store.layout(name)
        target = plan.index.partitions
        counts = relayout.MoveCounts()
        move = _Move(store, name, target, layout, wait, sleep, on_progress, counts)
        steps = [
            _Step(move, f"create {layout_name(target)} and write both layouts", _start),
            _Step(move, "copy every record (newer wins)", _copy),
            _Step(move, "copy what changed meanwhile; drop what was deleted", _catch_up),
            _Step(move, f"switch searches and writes to {layout_name(target)}", _switch),
            _Step(move, "remove the old layout", _remove, removing=True),
        ]
        before = layout.describe() if layout else "missing"
        results = run_steps(steps, dry_run=dry_run, on_result=on_step, atomic=False)
        after = store.layout(name)
        shown = after.describe() if after else "missing"
        if dry_run and move.needed(removing=False):
            shown = layout_name(target)  # what the run would leave, as its steps say
        moves.append(IndexMove(name, before, shown, counts))
        moves[-1].steps = results
    return moves
