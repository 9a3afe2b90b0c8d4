"""What every command shares: the global options, the loaded plan, the adapters, the output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.output import Output

if TYPE_CHECKING:
    from constellation.plan import Plan
    from constellation.services import Services
    from constellation.wiring.migration import Migration


@dataclass
class AppContext:
    plan_path: Path
    env: str | None
    debug: bool = False
    #: the invocation's one output object (``--json`` switches it to JSON before the command runs)
    output: Output = field(default_factory=Output)
    _plan: Plan | None = None
    _services: list[Services] = field(default_factory=list)
    _migrations: list[Migration] = field(default_factory=list)

    def plan(self) -> Plan:
        """The plan, loaded and validated once per command."""
        if self._plan is None:
            from constellation.plan import load_plan

            self._plan = load_plan(self.plan_path, self.env)
        return self._plan

    def services(self, *, write: bool = True) -> Services:
        """The plan's adapters, closed when the command ends."""
        from constellation.services import Services

        services = Services(self.plan(), write=write, loading=self.output.loading)
        self._services.append(services)
        return services

    def migration(
        self,
        *,
        write: bool = True,
        services: Services | None = None,
        observe_query: Callable[[float], None] | None = None,
    ) -> Migration:
        """The migration context (state, source, old system, router, search) for the plan,
        on ``services`` when given (else the plan's, opened here); ``observe_query`` receives
        each search's latency."""
        from constellation.wiring.migration import Migration

        services = services or self.services(write=write)
        migration = Migration(self.plan(), services, observe_query=observe_query)
        self._migrations.append(migration)
        return migration

    def close(self) -> None:
        while self._migrations:
            self._migrations.pop().close()
        while self._services:
            self._services.pop().close()


def get(ctx: typer.Context) -> AppContext:
    """The :class:`AppContext` of the running command."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):  # a sub-app invoked on its own (tests)
        from constellation.plan import DEFAULT_PLAN

        root.obj = AppContext(DEFAULT_PLAN, None)
    return root.obj
