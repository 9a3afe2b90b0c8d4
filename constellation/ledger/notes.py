"""The migration state's notes: what commands record beside the state's own fields.

One typed entry per owner, so the keys below are the notes' whole schema:

* ``step_started_at``: phases 2 and 3 (and a rollback, which restarts it): when the current
  traffic step or window began; a gate reads only comparisons made since.
* ``old_writes_stopped_at``: phase 4: when writes to the old system stopped; a rollback's
  catch-up writes every note changed since.
* ``consistency``: phases 1 and 3: the last consistency check (``migrate status`` shows it).
* ``model_upgrade``: ``model upgrade|switch|rollback|finalize``: the upgrade in progress.
* ``archive``: phase 4: the legacy index's archive file and the records it holds.
* ``checks``: every check's last measurement by name (``check recall|quality|capacity``, the
  gates of the phases and of ``model switch``).

A transition sets only the entries it names (:func:`merged`); ``checks`` is merged one level
deeper, so recording one check keeps the others. Notes stored before this schema kept each
check under its own ``"check: <name>"`` key: :func:`from_stored` folds those into ``checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

#: the key of each recorded check in notes stored before ``checks`` (folded in when read)
OLD_CHECK_PREFIX = "check: "


class ConsistencyNote(TypedDict, total=False):
    """A consistency check: overlap of old and new results on a sample of notes."""

    mean: float | None
    minimum: float | None
    checked: int
    min_overlap: float
    passed: bool
    #: ISO 8601
    at: str


#: the upgrade in progress ("from" is a keyword: the functional form)
ModelUpgradeNote = TypedDict(
    "ModelUpgradeNote",
    {"from": int, "to": int, "stage": str, "deleted": int},
    total=False,
)


class ArchiveNote(TypedDict):
    """Phase 4's archive of the legacy index, as verified."""

    path: str
    records: int


class CheckNote(TypedDict):
    """One check's last measurement and outcome."""

    outcome: str
    value: Any
    bound: Any
    dry_run: bool
    #: the command that measured it
    command: str
    #: epoch seconds
    at: float


class Notes(TypedDict, total=False):
    """The state's notes (see the module doc). An entry set back by an undone step may be
    None: read them with ``.get``."""

    step_started_at: float | None
    old_writes_stopped_at: float | None
    consistency: ConsistencyNote | None
    model_upgrade: ModelUpgradeNote | None
    archive: ArchiveNote | None
    checks: dict[str, CheckNote]


def from_stored(data: Mapping[str, Any] | None) -> Notes:
    """Notes as stored (JSON), older layouts included: each ``"check: <name>"`` key becomes
    ``checks[name]``. Keys this schema does not know are kept, so nothing stored is lost."""
    notes: dict[str, Any] = {}
    checks: dict[str, Any] = dict((data or {}).get("checks") or {})
    for key, value in (data or {}).items():
        if key.startswith(OLD_CHECK_PREFIX):
            checks.setdefault(key.removeprefix(OLD_CHECK_PREFIX), value)
        elif key != "checks":
            notes[key] = value
    if checks:
        notes["checks"] = checks
    return cast(Notes, notes)


def merged(before: Notes, changes: Mapping[str, Any]) -> Notes:
    """``before`` with the entries ``changes`` sets; ``checks`` merged by check name."""
    after: dict[str, Any] = {**before, **changes}
    if "checks" in changes:
        after["checks"] = {**(before.get("checks") or {}), **(changes["checks"] or {})}
    return cast(Notes, after)


def step_started_at(notes: Notes) -> float:
    """When the current traffic step or window began (0: none recorded, every comparison
    counts)."""
    return float(notes.get("step_started_at") or 0.0)
