"""``constellation users``: who has notes, how many, and how many the new index holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from constellation.wiring.migration import Migration


@dataclass(frozen=True)
class UserNotes:
    user: str
    #: notes in the app's notes table (the source of truth)
    notes: int
    #: records of the version searches read in the new index (None: not provisioned yet)
    records: int | None


@dataclass
class UsersReport:
    #: users with the most notes first
    users: list[UserNotes] = field(default_factory=list)
    #: users with notes in all (``users`` may show fewer: ``--limit``)
    total_users: int = 0
    version: int = 0


def list_users(m: Migration, *, limit: int = 50) -> UsersReport:
    """List the users who have notes, the most first, with their records in the new index."""
    version = m.state.read().read_versions[0]
    counts = m.source.notes_per_user(limit)
    provisioned = m.services.store.inspect(m.plan.index_name_for(version)) is not None
    index = m.services.index(version) if provisioned else None
    report = UsersReport(total_users=len(m.source.users()), version=version)
    for user, notes in counts.items():
        records = index.count(user_id=user, version=version) if index is not None else None
        report.users.append(UserNotes(user, notes, records))
    return report
