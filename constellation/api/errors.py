"""Error answers: a bad body is a 422 naming every wrong field, a system that cannot be reached
a 503 naming it (with ``Retry-After``), an unknown path a 404; all in one shape
(:class:`constellation.api.schemas.Problem`), never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from constellation.api.asgi import problem
from constellation.api.serving import component_of
from constellation.errors import ConstellationError, InvalidField, JobsRejected

log = logging.getLogger("constellation.api")


def install(app: FastAPI, retry_after: int) -> None:
    """Register the service's error answers on ``app``."""

    async def invalid_body(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _unprocessable(field_errors(exc.errors()))

    async def invalid_field(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidField)
        return _unprocessable([{"field": exc.field, "detail": exc.detail}])

    async def rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, JobsRejected)
        body = [{"index": i, "reason": r.reason, "detail": r.detail} for i, r in exc.rejected]
        return JSONResponse({"rejected": body}, status_code=422)

    async def failed(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConstellationError)
        component = component_of(exc)
        if component is None:
            log.error("request failed: %s", exc, extra={"event": "request_failed"})
            return JSONResponse(problem("failed", str(exc)), status_code=500)
        log.warning(
            "%s unavailable: %s",
            component,
            exc,
            extra={"event": "unavailable", "component": component},
        )
        return JSONResponse(
            problem("unavailable", f"{component} unavailable: {exc}", component=component),
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            problem(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(InvalidField, invalid_field)
    app.add_exception_handler(JobsRejected, rejected)
    app.add_exception_handler(ConstellationError, failed)
    app.add_exception_handler(HTTPException, http_error)


def _unprocessable(fields: list[dict[str, str]]) -> JSONResponse:
    detail = "; ".join(f"{f['field']}: {f['detail']}" for f in fields)
    return JSONResponse(problem("invalid_body", detail, fields=fields), status_code=422)


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "list_type": "must be an array",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "json_invalid": "the body is not valid JSON",
}


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's errors as ``{"field": "userId", "detail": "must be a string, got an object"}``."""
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        kind = error.get("type", "")
        if kind == "json_invalid":
            loc = []
        detail = _MESSAGES.get(kind) or str(error.get("msg", "invalid")).removeprefix(
            "Value error, "
        )
        if kind.endswith("_type") and "input" in error:
            detail += f", got {_json_type(error['input'])}"
        fields.append({"field": ".".join(loc) or "body", "detail": detail})
    return fields


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds = {str: "a string", int: "an integer", float: "a number", list: "an array"}
    return kinds.get(type(value), "an object")
