"""The "Examples" section at the end of the main commands' ``--help`` (as gh and wrangler do).

One place, so the examples stay consistent and a test can check that each names its command.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "demo": (
        "constellation demo                          # the whole migration, 800 notes",
        "constellation demo --notes 300 --dwell 10s  # smaller, slower steps",
        "constellation demo --reset --json           # start afresh; the summary as JSON",
    ),
    "provision": (
        "constellation provision --dry-run           # what would be created",
        "constellation provision --env staging",
    ),
    "describe": (
        "constellation describe",
        "constellation describe --json | jq '.queues[].info.depth'",
    ),
    "verify": (
        "constellation verify                        # in-process unless a worker runs",
        "constellation verify --inline --json",
        "constellation verify --env staging --timeout 60",
    ),
    "serve": (
        "constellation serve                         # 127.0.0.1:8080, beside a worker",
        "constellation serve --worker --log-json     # the embedded default: one process",
        "CONSTELLATION_TOKEN=... constellation serve --host 0.0.0.0 --port 8080",
    ),
    "worker run": (
        "constellation worker run                    # until Ctrl-C",
        "constellation worker run --drain            # until the queue is empty",
        "constellation worker run --metrics-port 9100 --log-json",
    ),
    "enqueue": (
        "constellation enqueue --user u1 --note n1 --text 'buy milk'",
        "constellation enqueue --file notes.jsonl",
    ),
    "query": (
        "constellation query 'groceries' --user u1",
        "constellation query 'groceries' --user u1 --top-k 3 --json",
        "constellation query 'groceries' --user u1 --versions 2,1",
    ),
    "users": (
        "constellation users                         # who has notes, the most first",
        "constellation users --limit 5 --json",
    ),
    "migrate status": (
        "constellation migrate status",
        "constellation migrate status --json | jq .state",
    ),
    "migrate phase": (
        "constellation migrate phase 1 --wait        # dual writes, backfill, drain",
        "constellation migrate phase 2 --auto --dwell 1h",
        "constellation migrate phase 2 --step        # one traffic step behind its gate",
        "constellation migrate phase 3 --dry-run",
        "constellation migrate phase 2 --force --reason 'gate checked by hand'",
    ),
    "rollback quick": (
        "constellation rollback quick --dry-run      # what would change",
        "constellation rollback quick --reason 'p95 alert'",
    ),
    "rollback full": (
        "constellation rollback full --dry-run",
        "constellation rollback full --delete-service --yes",
    ),
    "requeue": (
        "constellation requeue --missing --dry-run   # what would be sent",
        "constellation requeue --user u1 --note n1",
        "constellation requeue --from-dlq",
        "constellation requeue --missing --force     # also records newer than the source",
    ),
    "recover": (
        "constellation recover",
        "constellation recover --requeue",
        "constellation recover --json | jq '.affected[].command'",
    ),
    "compare": ("constellation compare --user u1 --note n1",),
    "stats": ("constellation stats", "constellation stats --json"),
    "monitor": ("constellation monitor --once   # exits 1 while an alert fires",),
    "dashboard": (
        "constellation dashboard                     # live; q or Ctrl-C to quit",
        "constellation dashboard --once --range 15m",
        "constellation dashboard --html report.html",
    ),
}


def epilog(command: str) -> str:
    """The help epilog of ``command`` (its examples, one a line)."""
    lines = "\n".join(EXAMPLES[command])
    return f"[bold]Examples[/bold]\n\n{lines}"
