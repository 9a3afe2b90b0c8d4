"""Operators in other processes: each runs state-changing commands on cue, on one real plan.

An :class:`Operator` is a spawned process holding its own migration runtime (its own state
store connection, queue and indexes opened read-only, the recording fake for the model) over
the plan file it is given, as a second operator's terminal would. :func:`race` starts one
command in each of two operators at the same instant (a barrier shared by the processes) and
returns what each said: ``ok``, ``refused: <message>`` for our own errors, or
``crashed: <traceback>`` for anything else.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from constellation.ledger.journal import JournalEntry
from constellation.ledger.state import MigrationState
from phases.migrate.transitions import may_start


def _state_of(entry_after: dict[str, Any]) -> MigrationState:
    return MigrationState.from_json(json.dumps(entry_after))


def check_invariants(state: MigrationState) -> None:
    """The invariants every interleaving must leave true."""
    if state.write_mode == "old":
        assert state.read_traffic == 0.0, state
        assert may_start(state, 1), state  # `migrate phase 1` starts again
    if state.read_traffic > 0:
        assert state.write_mode in ("dual", "new"), state


def check_journal(entries: list[JournalEntry], state: MigrationState) -> None:
    """One chain of states ending at ``state``."""
    for previous, entry in pairwise(entries):
        assert entry.before == previous.after, (previous, entry)
    assert _state_of(entries[-1].after) == state


#: the commands an operator can be asked to run (the CLI command each stands for)
COMMANDS = (
    "rollback quick",
    "rollback full",
    "traffic set 0.5 --yes",
    "traffic set 0",
    "consumer disable",
    "consumer enable",
    "migrate phase 1",
    "migrate phase 2",
    "migrate phase 3",
)


def _verbs(m: Any) -> dict[str, Callable[[], object]]:
    from phases.migrate import consumer, rollback, traffic
    from phases.migrate.phase1 import phase1
    from phases.migrate.phase2 import phase2
    from phases.migrate.phase3 import phase3

    return {
        "rollback quick": lambda: rollback.rollback_quick(m),
        "rollback full": lambda: rollback.rollback_full(m),
        "traffic set 0.5 --yes": lambda: traffic.set_traffic(m, 0.5, yes=True),
        "traffic set 0": lambda: traffic.set_traffic(m, 0.0),
        "consumer disable": lambda: consumer.consumer(m, False),
        "consumer enable": lambda: consumer.consumer(m, True),
        "migrate phase 1": lambda: phase1(m),
        "migrate phase 2": lambda: phase2(m, mode="step"),
        "migrate phase 3": lambda: phase3(m),
    }


def _serve(plan_path: str, pipe: Connection, barrier: Any) -> None:
    """The operator process: open the runtime once, then run each command on cue."""
    from constellation.errors import ConstellationError
    from constellation.plan import load_plan
    from constellation.services import Services
    from constellation.wiring.migration import Migration
    from tests.fakes import RecordingEmbedder

    plan = load_plan(Path(plan_path))
    embedder = RecordingEmbedder(model_id="all-MiniLM-L6-v2", dimension=384, max_tokens=256)
    services = Services(plan, write=False, embedders={1: embedder})
    m = Migration(plan, services, legacy_write=False)
    verbs = _verbs(m)
    pipe.send("ready")
    while True:
        order = pipe.recv()
        if order is None:
            break
        command, delay = order
        barrier.wait()
        time.sleep(delay)
        try:
            result = verbs[command]()
            outcome = "ok" if getattr(result, "ok", True) else "ok (gate not passed)"
        except ConstellationError as exc:
            outcome = f"refused: {exc}"
        except Exception:
            outcome = f"crashed: {traceback.format_exc()}"
        pipe.send(outcome)
    m.close()
    services.close()


@dataclass
class Operator:
    process: Any
    pipe: Connection


class Operators:
    """Two operator processes over one plan, started once and reused for every race."""

    def __init__(self, plan_path: Path, seed: int = 0) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.barrier = spawn.Barrier(2)
        self.rng = random.Random(seed)
        self.operators: list[Operator] = []
        for _ in range(2):
            ours, theirs = spawn.Pipe()
            process = spawn.Process(target=_serve, args=(str(plan_path), theirs, self.barrier))
            process.start()
            self.operators.append(Operator(process, ours))
        for operator in self.operators:
            if not operator.pipe.poll(300):
                raise TimeoutError("an operator process did not start")
            assert operator.pipe.recv() == "ready"

    def race(self, first: str, second: str) -> tuple[str, str]:
        """Run ``first`` and ``second`` at once (each after a random few milliseconds, so
        either may get ahead); returns each one's outcome."""
        for operator, command in zip(self.operators, (first, second), strict=True):
            operator.pipe.send((command, self.rng.uniform(0, 0.01)))
        outcomes = []
        for operator in self.operators:
            if not operator.pipe.poll(300):
                raise TimeoutError("an operator's command did not finish")
            outcomes.append(operator.pipe.recv())
        return outcomes[0], outcomes[1]

    def close(self) -> None:
        for operator in self.operators:
            operator.pipe.send(None)
        for operator in self.operators:
            operator.process.join(timeout=60)
            if operator.process.is_alive():
                operator.process.kill()

    def __enter__(self) -> Operators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
