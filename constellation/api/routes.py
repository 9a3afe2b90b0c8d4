"""The endpoints: parse the body, call :class:`~constellation.api.serving.ServiceRuntime`,
render the answer. Blocking work (the model, the index, the queue) runs in the server's thread
pool: every route but ``/embed``'s body parsing is a plain ``def``."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from constellation.api import schemas
from constellation.api.asgi import problem
from constellation.api.serving import Check, ServiceRuntime
from constellation.errors import InvalidField, JobsRejected, UnknownVersion
from constellation.jobs import TOO_DEEP, Rejection
from constellation.jsondata import jsonable
from constellation.migration.source import Note
from constellation.query import SearchResult

router = APIRouter()

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Problem, "description": "missing or unknown token"},
    403: {"model": schemas.Problem, "description": "a read token on a writing endpoint"},
    413: {"model": schemas.Problem, "description": "body over service.max_body_bytes"},
    422: {"model": schemas.Problem, "description": "a field is wrong; every one is named"},
    503: {"model": schemas.Problem, "description": "overloaded, or a system is unreachable"},
}


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


@router.post(
    "/embed",
    status_code=202,
    response_model=schemas.Accepted,
    responses={**_PROBLEMS, 422: {"model": schemas.Rejected, "description": "rejected jobs"}},
    openapi_extra={"requestBody": schemas.embed_request_schema()},
    summary="Enqueue one job, or {jobs: [...]}, for the embed worker",
)
async def embed(request: Request) -> JSONResponse:
    """Every job is validated as the worker validates; if any is invalid, none is sent."""
    runtime = _runtime(request)
    try:
        items = _jobs_of(await request.body())
    except RecursionError:  # what the other endpoints answer for a body nested this deep
        return JSONResponse(problem("invalid_body", TOO_DEEP), status_code=400)
    report = await run_in_threadpool(runtime.embed, items)
    if report.rejected:  # the queue refused some entries: say which were sent
        detail = "; ".join(sorted({r.detail for r in report.rejected}))
        body = problem(
            "unavailable",
            f"queue unavailable: {len(report.rejected)} of {len(items)} jobs not sent: {detail}",
            component="queue",
            accepted=report.sent,
            messageIds=report.message_ids,
            failed=[r.line for r in report.rejected],
        )
        retry = str(runtime.plan.service.retry_after)
        return JSONResponse(body, status_code=503, headers={"Retry-After": retry})
    return JSONResponse({"accepted": report.sent, "messageIds": report.message_ids}, 202)


def _jobs_of(body: bytes) -> list[Any]:
    """One job or ``{"jobs": [...]}``; a body that is neither is rejected as index 0."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise JobsRejected([(0, Rejection("not_json", f"body is not JSON ({exc})"))]) from None
    if isinstance(data, dict) and "jobs" in data:
        if not isinstance(data["jobs"], list):
            raise JobsRejected([(0, Rejection("wrong_type", "jobs must be an array of jobs"))])
        return list(data["jobs"])
    return [data]


@router.post("/query", response_model=schemas.QueryAnswer, responses=_PROBLEMS)
def query(body: schemas.QueryBody, request: Request) -> dict[str, Any]:
    """The user's closest notes in the new index (the state's model versions by default)."""
    runtime = _runtime(request)
    _check_top_k(runtime, body.top_k)
    if body.version is not None and body.versions is not None:
        raise InvalidField("versions", "give version or versions, not both")
    asked = ("versions", body.versions) if body.version is None else ("version", [body.version])
    try:
        found = runtime.query(body.text, body.user_id, body.top_k, asked[1])
    except UnknownVersion as exc:  # named by the field that asked for it
        raise UnknownVersion(exc.version, exc.declared, field=asked[0]) from None
    return {"results": [_result(r) for r in found.results]}


@router.post("/notes", status_code=202, response_model=schemas.NoteWritten, responses=_PROBLEMS)
def notes(body: schemas.NoteBody, request: Request) -> dict[str, Any]:
    """Write a note as the router does: old, both, or new, by the migration's write mode."""
    created = body.created if body.created is not None else int(time.time() * 1000)
    note = Note(body.note_id, body.user_id, body.text, created, created)
    outcome = _runtime(request).write_note(note)
    return {
        "writeMode": outcome.write_mode,
        "written": list(outcome.written),
        "failed": list(outcome.failed),
    }


@router.post("/search", response_model=schemas.SearchAnswer, responses=_PROBLEMS)
def search(body: schemas.SearchBody, request: Request) -> dict[str, Any]:
    """Search as the router does: the user's side serves, the other is compared."""
    runtime = _runtime(request)
    _check_top_k(runtime, body.top_k)
    routed = runtime.search(body.text, body.user_id, body.top_k)
    return {"results": [_result(r) for r in routed.results], "servedBy": routed.served_by}


@router.get("/stats", responses=_PROBLEMS)
def stats(request: Request) -> dict[str, Any]:
    """The figures of ``constellation stats --json`` (the same document)."""
    data: dict[str, Any] = jsonable(_runtime(request).stats())
    return data


@router.get("/healthz", openapi_extra={"security": []})
def healthz() -> dict[str, str]:
    """The process is alive (no token needed)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={**_PROBLEMS, 503: {"model": schemas.Readiness, "description": "not ready"}},
)
def readyz(request: Request) -> JSONResponse:
    """Queue, index and state store reachable, the model loaded; else 503 naming what is not."""
    load = request.app.state.load
    checks = sorted(
        [
            *_runtime(request).readiness(),
            Check(
                "requests in flight",
                not load.full,
                f"{load.in_flight} of {load.limit} (service.max_in_flight)",
            ),
        ],
        key=lambda c: c.name,
    )
    failing = [c.name for c in checks if not c.ok]
    body = {
        "ready": not failing,
        "failing": failing,
        "checks": [vars(c) for c in checks],
        "defaultVersion": _runtime(request).plan.default_version,
    }
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get("/metrics", response_class=Response, responses=_PROBLEMS)
def metrics(request: Request) -> Response:
    """Prometheus text: requests by endpoint and status, and the worker's when it runs here."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    runtime = _runtime(request)
    text = generate_latest(request.app.state.http_metrics.registry)
    if runtime.worker_metrics is not None:
        text += generate_latest(runtime.worker_metrics.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def _check_top_k(runtime: ServiceRuntime, top_k: int) -> None:
    limit = runtime.plan.service.max_top_k
    if top_k > limit:
        raise InvalidField("topK", f"at most {limit} (service.max_top_k), got {top_k}")


def _result(r: SearchResult) -> dict[str, Any]:
    return {
        "noteId": r.note_id,
        "score": float(r.score),
        "version": r.version,
        "created": r.created,
    }
