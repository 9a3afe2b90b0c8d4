"""One app machine's router against a shared state database, as a separate process.

``python -m tests.support.pg_router URL PLAN ENV N``: reads the migration state every moment
(as a router does within its refresh bound), records one comparison and one failure per read,
and once it has seen read traffic 1.0 records ``N`` more and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import sys
import time

from constellation.ledger.comparisons import Comparison, ComparisonLog
from constellation.ledger.failures import FailureLog
from constellation.ledger.state import StateStore
from constellation.worker.events import JobFailure


def main(url: str, plan: str, environment: str, after: int) -> None:
    state = StateStore(url, plan, environment)
    comparisons = ComparisonLog(url, plan, environment)
    failures = FailureLog(url, plan, environment)
    seen: list[float] = []
    recorded = remaining = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        traffic = state.read().read_traffic
        if not seen or seen[-1] != traffic:
            seen.append(traffic)
        comparisons.record(Comparison(time.time(), "old", traffic, 1.0, 10, 10, 1.0, 2.0))
        failures.failed(JobFailure(time.time(), "model_error", "boom", False, "m", 1, "u", "n", 1))
        recorded += 1
        if traffic == 1.0:
            remaining += 1
            if remaining >= after:
                break
        time.sleep(0.01)
    print(json.dumps({"seen": seen, "recorded": recorded}))
    for closable in (state, comparisons, failures):
        closable.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
