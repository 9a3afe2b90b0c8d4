"""The app-side Python client: what producers and the search service call.

It mirrors today's two calls, "send a note to be embedded" and "search a user's notes"::

    client = Client.from_plan("plans/staging.yaml")
    client.enqueue({"userId": "u1", "noteId": "n1", "text": "buy milk", "created": 1700000000000,
                    "version": 1})
    for hit in client.query("groceries", user_id="u1", top_k=5):
        print(hit.note_id, hit.score)

During the migration the app writes and searches through :meth:`Client.router` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from constellation.errors import JobRejected
from constellation.jobs import Job
from constellation.plan import Plan, load_plan
from constellation.producer import SendReport, send_jobs, validate
from constellation.query import SearchResult
from constellation.services import Services

if TYPE_CHECKING:
    from constellation.migration.router import Router
    from constellation.wiring.migration import Migration

# JobRejected is what an app catches around enqueue(): importable from here too.
__all__ = ["Client", "JobRejected", "SearchResult"]


class Client:
    """Enqueue jobs and query notes for one plan and environment."""

    def __init__(self, plan: Plan, services: Services | None = None) -> None:
        self.plan = plan
        # Reading clients never take the embedded index's writer lock: a worker may hold it.
        self.services = services or Services(plan, write=False)
        self._migration: Migration | None = None
        self._routers: list[Router] = []
        #: query latency, recorded for ``stats`` while the client searches (opened on first use)
        self._metrics = ExitStack()
        self._observe: Callable[[float], None] | None = None

    @classmethod
    def from_plan(cls, path: str | Path, env: str | None = None) -> Client:
        """A client for the plan at ``path`` (environment ``env``)."""
        return cls(load_plan(path, env))

    def enqueue(self, job: Job | Mapping[str, Any]) -> str:
        """Validate and send one job; returns the message id. Raises :class:`JobRejected`."""
        report = self.enqueue_many([job])
        if report.rejected:
            rejected = report.rejected[0]
            raise JobRejected(f"job rejected ({rejected.reason}): {rejected.detail}")
        return report.message_ids[0]

    def enqueue_many(self, jobs: Iterable[Job | Mapping[str, Any]]) -> SendReport:
        """Validate and send many jobs in batches; rejected ones are reported by position."""
        return send_jobs(
            self.services.queue,
            validate(jobs, self.plan.models, self.plan.consumer.max_job_bytes),
            keep_ids=True,
        )

    def query(
        self, text: str, user_id: str, top_k: int = 10, version: int | None = None
    ) -> list[SearchResult]:
        """The ``top_k`` notes of ``user_id`` closest to ``text`` (in the plan's default model
        version unless ``version`` is given): :meth:`Migration.search
        <constellation.wiring.migration.Migration.search>`, as the CLI and the HTTP service
        search."""
        version = self.plan.default_version if version is None else version
        return self.migration().search(text, user_id, top_k, [version]).results

    def observe_query(self) -> Callable[[float], None]:
        """The query-latency recorder of this client: every search it (or its router) makes is
        counted in the metrics ``stats`` and the dashboard read, snapshot every
        ``monitoring.snapshot_interval`` seconds."""
        if self._observe is None:
            from constellation.monitoring.worker_metrics import query_metrics

            interval = self.plan.monitoring.snapshot_interval
            self._observe = self._metrics.enter_context(
                query_metrics(self.plan, self.services, interval=interval)
            )
        return self._observe

    def _observed(self, seconds: float) -> None:
        """What this client's :class:`Migration` reports each search's latency to (the
        recorder opens at the first search)."""
        self.observe_query()(seconds)

    def migration(self) -> Migration:
        """The migration's runtime for this plan (state, notes source, old system), opened once.

        The app writes its old system itself, so the old system opens writable; the new index
        stays read-only here (the workers write it)."""
        if self._migration is None:
            from constellation.wiring.migration import Migration

            self._migration = Migration(
                self.plan, self.services, legacy_write=True, observe_query=self._observed
            )
        return self._migration

    def router(self) -> Router:
        """The app's router: writes and searches follow the migration state (write mode, read
        traffic), re-read every ``migration.traffic.state_refresh`` seconds."""
        self.observe_query()  # searches are counted from the router's start
        router = self.migration().router()
        self._routers.append(router)
        return router

    def close(self) -> None:
        while self._routers:
            self._routers.pop().close()
        self._metrics.close()
        self._observe = None
        if self._migration is not None:
            self._migration.close()
            self._migration = None
        self.services.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
