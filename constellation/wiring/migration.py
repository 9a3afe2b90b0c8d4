"""The migration's runtime for one plan: state, logs, notes source, old system, router, and
the one search of a user's notes (:meth:`Migration.search`).

What the app runs (the router, through :meth:`constellation.Client.router`), what the CLI's
``query``, the HTTP service and the client search with, and what every operator verb needs,
opened on first use and closed together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property

from constellation.ledger.comparisons import ComparisonLog
from constellation.ledger.failures import FailureLog
from constellation.ledger.state import StateStore, open_state
from constellation.masking import location
from constellation.migration.legacy import Closable, LegacySystem, load_legacy
from constellation.migration.router import Router, Search
from constellation.migration.source import NotesSource
from constellation.plan import Plan
from constellation.query import (
    Searched,
    SearchResult,
    is_blank,
    require_user,
    search,
    search_versions,
)
from constellation.readback import explain_empty
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
        #: receives each new-system search's latency in seconds (query metrics)
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
    def legacy(self) -> LegacySystem:
        """The plan's old system, writable when this process writes it (:attr:`legacy_write`)."""
        return load_legacy(self.plan, self.services, write=self.legacy_write)

    @cached_property
    def legacy_writer(self) -> LegacySystem:
        """The old system opened for writing, even in a process that otherwise only reads it
        (a rollback's catch-up, run by an operator command)."""
        if self.legacy_write:
            return self.legacy
        return load_legacy(self.plan, self.services, write=True)

    # searches --------------------------------------------------------------------------------
    def search(
        self, text: str, user_id: str, top_k: int = 10, versions: Sequence[int] | None = None
    ) -> Searched:
        """One user's search of the new index: what ``constellation query``, the HTTP
        service's ``/query`` and :meth:`constellation.Client.query` all run.

        ``versions``: the model versions to search, several merged with a note's newest
        version preferred; by default (None or empty) the versions the migration state reads.
        Raises ``ValueError`` without a user id and :class:`UnknownVersion` for a version the
        plan does not declare, before any system is asked. Each search's latency goes to
        ``observe_query``. When nothing is found, :attr:`Searched.explanation` says why (the
        user has no notes in those versions, or the text is empty after preprocessing); a user
        who has records there but whom the search finds nothing for means the index's vectors
        cannot be read, and raises :class:`DamagedFile` naming the way back.
        """
        require_user(user_id)
        chosen = self._read_versions() if not versions else self.plan.declared(versions)
        results = self._search(text, user_id, top_k, chosen)
        explanation = "" if results else self._explain_empty(text, user_id, chosen)
        return Searched(user_id, results, chosen, explanation)

    def new_search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """The router's new side: :meth:`search` of the state's read versions, without the
        look at an empty answer (a shadow search must not cost an index count)."""
        return self._search(text, user_id, top_k, self._read_versions())

    def version_search(self, version: int) -> Search:
        """A search of the new index restricted to one model version (the checks compare
        versions with it); :class:`UnknownVersion` for a version the plan does not declare."""
        chosen = self.plan.declared([version], field="version")

        def run(text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
            return self._search(text, user_id, top_k, chosen)

        return run

    def old_search(self, text: str, user_id: str, top_k: int = 10) -> list[SearchResult]:
        """A search of the old system, as the app made it before the migration."""
        return list(self.legacy.search(text, user_id, top_k))

    def _read_versions(self) -> tuple[int, ...]:
        """The state's read versions, read again at most every ``traffic.state_refresh``
        seconds: a search must not cost a state read (the router's bound applies here too)."""
        now = time.monotonic()
        cached = self._versions_cache
        if cached is None or now - cached[0] >= self.plan.migration.traffic.state_refresh:
            cached = self._versions_cache = (now, self.state.read().read_versions)
        return cached[1]

    def _search(
        self, text: str, user_id: str, top_k: int, versions: tuple[int, ...]
    ) -> list[SearchResult]:
        if len(versions) == 1:
            (version,) = versions
            return search(
                text,
                user_id=user_id,
                index=self.services.index(version),
                embedder=self.services.query_embedder(version),
                top_k=top_k,
                version=version,
                observe=self.observe_query,
            )
        sources = [(v, self.services.index(v), self.services.query_embedder(v)) for v in versions]
        return search_versions(
            text, user_id=user_id, sources=sources, top_k=top_k, observe=self.observe_query
        )

    def _explain_empty(self, text: str, user_id: str, versions: tuple[int, ...]) -> str:
        if is_blank(text):
            return "the text is empty after preprocessing: there is nothing to search for"
        where = location(self.plan.index_location)
        for version in versions:
            # Fine for a user without notes; where the user has records, either they were
            # stored a moment ago (said), or the index's vectors cannot be read (an error).
            why = explain_empty(self.services.index(version), user_id, version, where=where)
            if why:
                return why
        named = ", ".join(str(v) for v in versions)
        return f"user {user_id} has no notes in model version{'s' if len(versions) > 1 else ''} {named}"

    def router(self) -> Router:
        """The app-side router over this plan's systems."""
        traffic = self.plan.migration.traffic
        return Router(
            self.state,
            self.legacy,
            lambda: self.services.queue,
            self.new_search,
            self.comparisons,
            shadow_timeout=traffic.shadow_timeout,
            state_refresh=traffic.state_refresh,
        )

    def close(self) -> None:
        """Close what was opened (each once: the old system may be its own writer)."""
        closed: list[object] = []
        for name in ("state", "comparisons", "failures", "source", "legacy_writer", "legacy"):
            resource = self.__dict__.pop(name, None)
            if isinstance(resource, Closable) and resource not in closed:
                resource.close()
                closed.append(resource)

    def __enter__(self) -> Migration:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
