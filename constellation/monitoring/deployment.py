"""Which deployment figures belong to: the plan's queue and index, as they exist now.

The metrics file outlives the servers it describes: a staging run against fresh servers (a new
moto, a new ``chroma run``) with the same data folder must not add its counts to the last run's.
A deployment is identified by what changes when the systems are new even though the plan is
not: the queue's URL and creation time and the index's own id (Chroma's collection UUID), with
the plan's name and environment. Every worker records the deployment it ran against, and
``stats``, ``monitor`` and ``dashboard`` count only the current one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from constellation.errors import ConstellationError
from constellation.plan import Plan
from constellation.timefields import EPOCH_SECONDS

log = logging.getLogger("constellation.monitoring")


@dataclass(frozen=True)
class Deployment:
    """One incarnation of a plan's queue and index."""

    #: a short stable id of everything below
    key: str
    plan: str
    environment: str
    #: the queue's URL and creation time (epoch seconds; None when the technology does not say)
    queue: str
    queue_created: float | None = field(metadata=EPOCH_SECONDS)
    #: the index's name and location, and the technology's id for it (None: not created yet)
    index: str
    index_id: str | None

    @property
    def since(self) -> float | None:
        """When this deployment began, as far as the systems say (the queue's creation)."""
        return self.queue_created


def deployment_key(
    plan: str,
    environment: str,
    queue: str,
    queue_created: float | None,
    index: str,
    index_id: str | None,
) -> str:
    parts = (plan, environment, queue, f"{queue_created or 0:.3f}", index, index_id or "")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def identify(plan: Plan, services: Any) -> Deployment | None:
    """The deployment the plan's systems are now, or None when the queue cannot be inspected
    (not provisioned, or unreachable): then no figures can be said to belong to it."""
    try:
        queue = services.broker.inspect(plan.queue.name)
    except ConstellationError as exc:
        log.debug("cannot identify the deployment: %s", exc)
        return None
    if queue is None:
        return None
    index_name = plan.index_name_for(plan.default_version)
    location = plan.index.url or str(plan.index_path)
    index_id: str | None = None
    try:
        info = services.store.inspect(index_name)
        index_id = info.id if info is not None else None
    except ConstellationError as exc:
        log.debug("cannot inspect the index for the deployment's identity: %s", exc)
    index = f"{index_name} at {location}"
    return Deployment(
        deployment_key(plan.name, plan.environment, queue.url, queue.created, index, index_id),
        plan.name,
        plan.environment,
        queue.url,
        queue.created,
        index,
        index_id,
    )
