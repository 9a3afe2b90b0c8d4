"""The old system: the app's own index, behind the port in :mod:`.port`.

Adapters, chosen by ``legacy.adapter`` in the plan: ``chroma`` (:mod:`.chroma`: the app's
Chroma collection, embedded or on a server, in the app's layout), ``pgvector``
(:mod:`.pgvector`: a PostgreSQL table with a vector column), or the operator's own
``module:object``, a callable taking ``(plan, services)``.
"""

from __future__ import annotations

from constellation.errors import AdapterError
from constellation.migration.legacy.port import (
    Archivable,
    ChecksLayout,
    Closable,
    FetchesNotes,
    FullLegacySystem,
    LayoutCheck,
    LegacySystem,
    NoteKey,
    Prunable,
    WritesMany,
    write_notes,
)
from constellation.plan import Plan, adapters
from constellation.services import Services

__all__ = [
    "Archivable",
    "ChecksLayout",
    "Closable",
    "FetchesNotes",
    "FullLegacySystem",
    "LayoutCheck",
    "LegacySystem",
    "NoteKey",
    "Prunable",
    "WritesMany",
    "load_legacy",
    "write_notes",
]


def load_legacy(plan: Plan, services: Services, *, write: bool = True) -> LegacySystem:
    """The plan's old system: a built-in adapter or the operator's ``module:object``.

    ``write=False`` opens it for reading only (an embedded Chroma folder takes no lock).
    """
    name = plan.legacy.adapter
    factory = adapters.load("legacy", name)
    if name in adapters.REGISTRY["legacy"]:
        legacy = factory(plan, services, write=write)
    else:
        legacy = factory(plan, services)
    if not isinstance(legacy, LegacySystem):
        raise AdapterError(
            f"the old-system adapter {name!r} made a {type(legacy).__name__}, which has no "
            "write(note) and search(text, user_id, top_k)",
            "see constellation/migration/legacy/port.py for the verbs an old system needs",
        )
    return legacy
