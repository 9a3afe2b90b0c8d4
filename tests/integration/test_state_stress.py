"""Fifty pairs of state-changing commands race each other as processes over one real SQLite
state file (and over a state database on a real PostgreSQL server), and after every pair the migration's invariants hold:

* ``write_mode old`` ⇒ read traffic 0 and a phase that can start again (phase 1);
* read traffic > 0 ⇒ writes reach the new system (write mode dual or new);
* the journal is one chain (each entry starts from the state the one before wrote, the last
  one is the state), and a command that was refused wrote nothing;
* neither command's effect is lost: a full rollback that succeeded leaves the migration rolled
  back, a quick one leaves read traffic at 0 unless a later command raised it on purpose.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from constellation.ledger.comparisons import Comparison
from constellation.ledger.state import MigrationState
from constellation.wiring.migration import Migration
from tests.support.migration import RigMigration, started
from tests.support.operators import Operators, check_invariants, check_journal
from tests.support.postgres import PostgresServer

PAIRS = 50

#: where a race starts (the fields set before it, journaled as "test")
STARTS: dict[str, dict[str, Any]] = {
    "phase 1 passed": {"phase": 1, "status": "passed", "write_mode": "dual"},
    "phase 2 at 0%": {"phase": 2, "status": "running", "write_mode": "dual"},
    "phase 2 at 20%": {
        "phase": 2,
        "status": "running",
        "write_mode": "dual",
        "read_traffic": 0.2,
        "traffic_step": 0,
    },
    "phase 2 passed": {
        "phase": 2,
        "status": "passed",
        "write_mode": "dual",
        "read_traffic": 0.8,
        "traffic_step": 2,
    },
    "phase 3 running": {"phase": 3, "status": "running", "write_mode": "dual", "read_traffic": 1.0},
    "rolled back": {"phase": 2, "status": "rolled_back", "write_mode": "old"},
    "phase 4 complete": {
        "phase": 4,
        "status": "complete",
        "write_mode": "new",
        "read_traffic": 1.0,
    },
}
#: the races, each with the starts it is run from
RACES: list[tuple[str, str, tuple[str, ...]]] = [
    ("rollback quick", "rollback full", ("phase 2 at 0%", "phase 2 at 20%", "phase 3 running")),
    ("traffic set 0.5 --yes", "rollback full", ("phase 2 at 0%", "phase 2 at 20%")),
    ("migrate phase 2", "rollback full", ("phase 2 at 0%", "phase 2 at 20%")),
    ("migrate phase 2", "rollback quick", ("phase 2 at 0%", "phase 2 at 20%")),
    ("migrate phase 3", "rollback full", ("phase 2 passed",)),
    ("migrate phase 1", "rollback full", ("rolled back", "phase 1 passed")),
    ("traffic set 0.5 --yes", "rollback quick", ("phase 2 at 20%",)),
    ("consumer enable", "rollback quick", ("phase 2 at 20%", "phase 3 running")),
    ("traffic set 0.5 --yes", "consumer disable", ("phase 2 at 20%",)),
    ("migrate phase 2", "traffic set 0.5 --yes", ("phase 2 at 20%",)),
    ("rollback full", "rollback full", ("phase 3 running",)),
    ("rollback quick", "traffic set 0", ("phase 4 complete", "phase 2 passed")),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RigMigration]:
    with started(tmp_path, notes=30, users=3) as m:
        m.services.close()  # the operators open the embedded indexes themselves
        yield m


def _passing_comparisons(m: Migration, at: float) -> None:
    """Enough good comparisons for phase 2's gate, recorded at ``at``."""
    for _ in range(m.plan.migration.traffic.min_comparisons):
        m.comparisons.record(Comparison(at, "old", 0.2, 1.0, 5, 5, 3.0, 4.0))


def check_effects(race: tuple[str, str], outcomes: tuple[str, str], state: MigrationState) -> None:
    """Neither command's effect was lost."""
    done = {c for c, o in zip(race, outcomes, strict=True) if o.startswith("ok")}
    other = {race[1] if c == race[0] else race[0] for c in done}
    if "rollback full" in done and "migrate phase 1" not in race:
        assert (state.status, state.write_mode) == ("rolled_back", "old"), state
    if "rollback quick" in done and other <= {"migrate phase 2", "rollback full", "traffic set 0"}:
        assert state.read_traffic == 0.0 and not state.consumer_enabled, state
    if "traffic set 0.5 --yes" in done and other <= {"consumer disable", "consumer enable"}:
        assert state.read_traffic == 0.5, state
    if {"consumer disable", "traffic set 0.5 --yes"} <= done:
        assert not state.consumer_enabled and state.read_traffic == 0.5, state


@pytest.mark.slow
@pytest.mark.timeout(1200)  # fifty pairs of processes on two cores
def test_fifty_racing_pairs_of_commands_leave_every_invariant_true(
    app: RigMigration, tmp_path: Path
) -> None:
    seen = run_races(app, tmp_path / "plan.yaml", PAIRS, seed=17)
    # The races were real: both kinds of ending happened.
    assert seen.get("ok", 0) > 0 and seen.get("refused", 0) > 0, seen


@pytest.mark.servers
@pytest.mark.slow
@pytest.mark.timeout(1200)  # fifty pairs of processes on two cores
def test_fifty_racing_pairs_on_a_postgresql_state_leave_every_invariant_true(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    state_url = postgres.database("state")
    with started(
        tmp_path, notes=30, users=3, overrides={"migration": {"state_url": state_url}}
    ) as app:
        assert app.plan.state_url.startswith("postgresql")
        app.services.close()
        seen = run_races(app, tmp_path / "plan.yaml", PAIRS, seed=17)
    assert seen.get("ok", 0) > 0 and seen.get("refused", 0) > 0, seen


def run_races(app: RigMigration, plan: Path, pairs: int, seed: int) -> dict[str, int]:
    """Race ``pairs`` pairs of commands, checking everything after each; returns how many
    commands ended each way (ok, ok (gate not passed), refused)."""
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    with Operators(plan, seed=seed) as operators:
        for pair in range(pairs):
            first, second, starts = RACES[pair % len(RACES)]
            if rng.random() < 0.5:
                first, second = second, first
            start = rng.choice(starts)
            now = time.time()
            _passing_comparisons(app, now)
            app.state.change(
                "test",
                f"pair {pair}: {start}",
                **{
                    "phase": 0,
                    "status": "not_started",
                    "write_mode": "old",
                    "read_traffic": 0.0,
                    "traffic_step": -1,
                    "consumer_enabled": True,
                    **STARTS[start],
                    "notes": {"step_started_at": now - 1},
                },
            )
            outcomes = operators.race(first, second)
            where = (
                f"pair {pair} from {start}: {first} → {outcomes[0]!r}, {second} → {outcomes[1]!r}"
            )
            assert not any(o.startswith("crashed") for o in outcomes), where
            state = app.state.read()
            journal = app.state.journal(limit=50)
            since = max(i for i, e in enumerate(journal) if e.command == "test")
            ours = journal[since:]
            try:
                check_invariants(state)
                check_journal(ours, state)
                check_effects((first, second), outcomes, state)
            except AssertionError as failed:
                raise AssertionError(f"{where}: {failed}") from None
            for command, outcome in zip((first, second), outcomes, strict=True):
                if outcome.startswith("refused") and not command.startswith("migrate"):
                    assert command not in {e.command for e in ours[1:]}, where
                kind = outcome.split(":")[0]
                seen[kind] = seen.get(kind, 0) + 1
    return seen
