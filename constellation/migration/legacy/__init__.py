"""The old system: the app's own index, behind the port in :mod:`.port`.

Adapters, chosen by ``legacy.adapter`` in the plan: ``chroma`` (:mod:`.chroma`: the app's
Chroma collection, embedded or on a server, in the app's layout), ``pgvector``
(:mod:`.pgvector`: a PostgreSQL table with a vector column), or the operator's own
``module:object``, a callable taking ``(plan, services)``.
"""

from __future__ import annotations

from typing import Any

from constellation.migration.legacy.port import FullLegacySystem, LayoutCheck, LegacySystem, NoteKey
from constellation.plan import Plan, adapters
from constellation.services import Services

__all__ = ["FullLegacySystem", "LayoutCheck", "LegacySystem", "NoteKey", "load_legacy"]


def load_legacy(plan: Plan, services: Services, *, write: bool = True) -> Any:
    """The plan's old system: a built-in adapter or the operator's ``module:object``.

    ``write=False`` opens it for reading only (an embedded Chroma folder takes no lock).
    """
    name = plan.legacy.adapter
    factory = adapters.load("legacy", name)
    if name in adapters.REGISTRY["legacy"]:
        return factory(plan, services, write=write)
    return factory(plan, services)
