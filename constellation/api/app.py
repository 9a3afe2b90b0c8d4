"""The ASGI application: :func:`create_app` for a loaded plan, :func:`app_from_env` for any
ASGI server (``uvicorn --factory constellation.api:app_from_env``).

The middlewares, outermost first: the access log (request id, metrics, the last-resort 500),
the console page's security headers, the token check, the body (its limit and deadline), the
in-flight bound; then FastAPI's routing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from constellation.api import console, errors, page, routes
from constellation.api.access import AccessLog, HttpMetrics
from constellation.api.auth import BearerAuth, Tokens
from constellation.api.limits import InFlightLimit, JsonBody, Load
from constellation.api.serving import ServiceRuntime
from constellation.api.verbs import ConsoleVerbs
from constellation.plan import DEFAULT_PLAN, Plan, load_plan
from constellation.services import Services

log = logging.getLogger("constellation.api")

#: the environment ``app_from_env`` reads
PLAN_VARIABLE, ENV_VARIABLE, WORKER_VARIABLE = (
    "CONSTELLATION_PLAN",
    "CONSTELLATION_ENV",
    "CONSTELLATION_SERVE_WORKER",
)

DESCRIPTION = """\
The Constellation embedding service over HTTP: enqueue embedding jobs, query a user's notes,
read the service's figures, and, during the migration, write and search the app's notes the way
the router does. Every endpoint but `/healthz` needs `Authorization: Bearer <token>` (tokens
come from the plan's `service.tokens`).
"""


def create_app(
    plan: Plan,
    *,
    worker: bool = False,
    services: Services | None = None,
    verbs: ConsoleVerbs | None = None,
) -> FastAPI:
    """The service for ``plan``. ``worker=True`` runs the embed worker in the same process
    (on the embedded default it must: the embedded index allows one writing process).
    ``verbs``: the migration's views and actions for the console (``constellation serve``
    hands them in); without them those endpoints answer 501."""
    runtime = ServiceRuntime(plan, worker=worker, services=services)
    tokens = Tokens(plan)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if tokens.open:
            log.warning(
                "the plan has no tokens: answering loopback clients only, without a token",
                extra={"event": "no_tokens"},
            )
        runtime.start()
        try:
            yield
        finally:
            runtime.close()

    app = _Service(
        title="Constellation",
        description=DESCRIPTION,
        version=_version(),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.verbs = verbs
    app.state.http_metrics = metrics = HttpMetrics()
    app.include_router(routes.router)
    app.include_router(console.router)
    app.include_router(page.router)
    app.mount(page.STATIC_PREFIX, page.static_files(), name="console-static")
    errors.install(app, plan.service.retry_after)
    app.state.load = load = Load(plan.service.max_in_flight)
    # add_middleware wraps: the last added is the outermost. The body is read before the
    # request takes a slot: a client that stalls in its body holds none.
    app.add_middleware(InFlightLimit, load=load, retry_after=plan.service.retry_after)
    app.add_middleware(
        JsonBody, limit=plan.service.max_body_bytes, timeout=plan.service.body_timeout
    )
    app.add_middleware(BearerAuth, tokens=tokens)
    app.add_middleware(page.PageHeaders)
    app.add_middleware(AccessLog, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The service for the plan named by ``CONSTELLATION_PLAN`` (default ``plans/local.yaml``)
    and ``CONSTELLATION_ENV``; ``CONSTELLATION_SERVE_WORKER=1`` runs the worker in-process."""
    plan = load_plan(os.environ.get(PLAN_VARIABLE) or DEFAULT_PLAN, os.environ.get(ENV_VARIABLE))
    worker = os.environ.get(WORKER_VARIABLE, "").lower() in ("1", "true", "yes")
    return create_app(plan, worker=worker)


class _Service(FastAPI):
    """FastAPI with the bearer scheme every endpoint but /healthz requires in its document."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            self.openapi_schema = schema
        return self.openapi_schema


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("constellation")
    except PackageNotFoundError:
        return "0"
