"""The migration's runtime for one plan: state, logs, notes source, old system and router.

What the app runs (the router, through :meth:`constellation.Client.router`) and what every
operator verb needs, opened on first use and closed together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from constellation.ledger.comparisons import ComparisonLog
from constellation.ledger.failures import FailureLog
from constellation.ledger.state import StateStore, open_state
from constellation.migration.router import Router
from constellation.migration.source import NotesSource
from constellation.plan import Plan
from constellation.query import SearchResult, search, search_versions
from constellation.services import Services


class Migration:
    """The plan, its adapters, the migration state, the notes source and the old system."""

    def __init__(
        self,
        plan: Plan,
        services: Services,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        observe_query: Callable[[float], None] | None = None,
        legacy_write: bool | None = None,
    ) -> None:
        self.plan = plan
        self.services = services
        self.clock = clock
        self.sleep = sleep
        #: receives each new-system search's latency (query metrics)
        self.observe_query = observe_query
        self._versions_cache: tuple[float, tuple[int, ...]] | None = None
        #: whether this process writes the old system (the app does; read-only commands do not)
        self.legacy_write = services.write if legacy_write is None else legacy_write

    @cached_property
    def state(self) -> StateStore:
        return open_state(self.plan)

    @cached_property
    def comparisons(self) -> ComparisonLog:
        return ComparisonLog(self.plan.state_url, self.plan.name, self.plan.environment)

    @cached_property
    def failures(self) -> FailureLog:
        return FailureLog.for_plan(self.plan)

    @cached_property
    def source(self) -> NotesSource:
        return NotesSource.from_plan(self.plan)

    @cached_property
    def legacy(self) -> Any:
        from constellation.migration.legacy import load_legacy

        return load_legacy(self.plan, self.services, write=self.legacy_write)

    @cached_property
    def legacy_writer(self) -> Any:
        """The old system opened for writing, even in a process that otherwise only reads it
        (a rollback's catch-up, run by an operator command)."""
        if self.legacy_write:
            return self.legacy
        from constellation.migration.legacy import load_legacy

        return load_legacy(self.plan, self.services, write=True)

    def new_search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """Search the new index the way the router does: the state's read version(s), merged
        (newest preferred) while a model upgrade is being switched."""
        versions = self._read_versions()
        if len(versions) == 1:
            return self.version_search(versions[0])(text, user_id, top_k)
        return self.merged_search(versions)(text, user_id, top_k)

    def _read_versions(self) -> tuple[int, ...]:
        """The state's read versions, read again at most every ``traffic.state_refresh``
        seconds: a search must not cost a state read (the router's bound applies here too)."""
        now = time.monotonic()
        cached = self._versions_cache
        if cached is None or now - cached[0] >= self.plan.migration.traffic.state_refresh:
            cached = self._versions_cache = (now, self.state.read().read_versions)
        return cached[1]

    def merged_search(
        self, versions: Sequence[int]
    ) -> Callable[[str, str, int], list[SearchResult]]:
        """A search over several model versions, a note's newest version preferred."""

        def run(text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
            sources = [(v, self.services.index(v), self.services.embedder(v)) for v in versions]
            return search_versions(
                text, user_id=user_id, sources=sources, top_k=top_k, observe=self.observe_query
            )

        return run

    def version_search(self, version: int) -> Callable[[str, str, int], list[SearchResult]]:
        """A search of the new index restricted to one model version."""
        self.plan.model(version)  # KeyError → unknown version, checked by callers

        def run(text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
            return search(
                text,
                user_id=user_id,
                index=self.services.index(version),
                embedder=self.services.embedder(version),
                top_k=top_k,
                version=version,
                observe=self.observe_query,
            )

        return run

    def old_search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        return list(self.legacy.search(text, user_id, top_k))

    def router(self, *, legacy: Any = None) -> Router:
        """The app-side router over this plan's systems (``legacy``: the old system as this
        caller wraps it; default: the plan's own)."""
        traffic = self.plan.migration.traffic
        return Router(
            self.state,
            self.legacy if legacy is None else legacy,
            lambda: self.services.queue,
            self.new_search,
            self.comparisons,
            shadow_timeout=traffic.shadow_timeout,
            state_refresh=traffic.state_refresh,
        )

    def close(self) -> None:
        closed: list[Any] = []
        for name in ("state", "comparisons", "failures", "source", "legacy_writer", "legacy"):
            resource = self.__dict__.pop(name, None)
            if resource is not None and hasattr(resource, "close") and resource not in closed:
                resource.close()
                closed.append(resource)

    def __enter__(self) -> Migration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
