"""Before ``constellation serve --worker`` on the embedded default: the serving process is the
whole deployment (one folder, one writing process), so it creates whatever is missing first,
as ``verify --inline`` does. Provisioning is idempotent; the model loads as the service starts.
"""

from __future__ import annotations

from constellation.plan import Plan
from constellation.services import Services
from phases.operate.provision import CheckModel, provision_steps
from phases.steps import StepResult, run_steps


def prepare_embedded(plan: Plan, services: Services) -> list[StepResult]:
    """On the embedded default, create the queues and the index that do not exist yet."""
    if plan.queue.adapter != "sqlite" or plan.index.url is not None:
        return []
    steps = [s for s in provision_steps(plan, services) if not isinstance(s, CheckModel)]
    return run_steps(steps)
