"""The console's JSON: the migration, old beside new, model versions, alerts and the service's
series, and the actions a write token may take. Each answer is the document a command prints
with ``--json`` where there is one (``GET /migration`` is ``migrate status --json``), so the
page and a script read the same thing; the page reads fields by name and ignores the rest.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from constellation.api.asgi import problem
from constellation.api.schemas import ActionBody
from constellation.api.serving import ServiceRuntime
from constellation.api.verbs import Action, ActionOutcome, ConsoleVerbs
from constellation.errors import ConflictError, InvalidField, StateError, Unreachable
from constellation.jsondata import iso_time, jsonable
from constellation.ledger.journal import acting_as

router = APIRouter()

#: the most a range may span (a week of comparisons or metrics)
MAX_RANGE = 7 * 24 * 3600.0


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _verbs(request: Request) -> ConsoleVerbs:
    verbs: ConsoleVerbs | None = request.app.state.verbs
    if verbs is None:
        raise HTTPException(
            501,
            "this service was started without the migration's verbs: start it with "
            "`constellation serve` for the migration's views and actions",
        )
    return verbs


def _range(seconds: float) -> float:
    if not 60 <= seconds <= MAX_RANGE:
        raise InvalidField("range", f"between 60 and {MAX_RANGE:g} seconds, got {seconds:g}")
    return seconds


@router.get("/migration")
def migration(request: Request) -> Any:
    """The state, the current gate with live values, recorded checks and the journal's tail:
    ``constellation migrate status --json``."""
    runtime = _runtime(request)
    with runtime.named_errors():
        return jsonable(_verbs(request).status(runtime.migration))


@router.get("/migration/comparisons")
def comparisons(
    request: Request,
    range_seconds: float = Query(3600.0, alias="range"),
    buckets: int = Query(30, ge=1, le=500),
) -> Any:
    """Old beside new over the last ``range`` seconds: overlap, each side's p50/p95 latency and
    errors per slice of time, and the overlaps' distribution."""
    runtime = _runtime(request)
    until = time.time()
    since = until - _range(range_seconds)
    with runtime.named_errors():
        return jsonable(runtime.migration.comparisons.side_by_side(since, until, buckets))


@router.get("/models")
def models(request: Request) -> Any:
    """Model versions written and read, records per version, an upgrade's stage:
    ``constellation model status --json``."""
    runtime = _runtime(request)
    with runtime.named_errors():
        return jsonable(_verbs(request).models(runtime.migration))


@router.get("/alerts")
def alerts(request: Request) -> dict[str, Any]:
    """Every alert rule: ok, pending or firing, with its value, as this service evaluates
    them (it notifies nobody: ``constellation monitor`` does)."""
    evaluation = _runtime(request).alerts()
    return {
        "at": iso_time(evaluation.at),
        "firing": [s.name for s in evaluation.firing],
        "alerts": [
            {
                "name": s.name,
                "state": s.state,
                "metric": s.rule.metric,
                "value": s.value,
                "op": s.rule.op,
                "threshold": s.rule.threshold,
                "for_seconds": s.rule.for_,
                "active_since": iso_time(s.active_since),
                "severity": s.rule.severity,
                "summary": s.rule.summary,
            }
            for s in evaluation.statuses
        ],
    }


@router.get("/dashboard")
def dashboard(
    request: Request,
    range_seconds: float = Query(3600.0, alias="range"),
    points: int = Query(60, ge=2, le=500),
) -> dict[str, Any]:
    """Every panel of ``constellation dashboard`` over the last ``range`` seconds: each line's
    points as ``[time, value]``, and the alert threshold the panel shows."""
    data = _runtime(request).dashboard(_range(range_seconds), points)
    return {
        "start": iso_time(data.start),
        "end": iso_time(data.end),
        "step_seconds": data.step,
        "source": data.source,
        "cadence": data.cadence(),
        "panels": [
            {
                "key": p.panel.key,
                "title": p.panel.title,
                "unit": p.panel.unit,
                "threshold": p.threshold,
                "series": {
                    legend: [[iso_time(t), v] for t, v in points_]
                    for legend, points_ in p.series.items()
                },
            }
            for p in data.panels
        ],
    }


@router.post("/migration/{action}", responses={409: {"description": "refused, as the CLI"}})
def act(action: Action, body: ActionBody, request: Request) -> JSONResponse:
    """Promote (``migrate phase 2 --step``), pause, resume or abort (``rollback quick``),
    journaled as made by the console with the caller's token name and the reason typed in;
    ``dryRun`` says what would change. 409 with the command's own message when it is refused."""
    runtime = _runtime(request)
    verbs = _verbs(request)
    if not body.dry_run and not body.reason.strip():
        raise InvalidField("reason", "say why: it is journaled with the change")
    caller = getattr(request.state, "caller", "-")
    try:
        with runtime.named_errors(), acting_as(f"console (token {caller})"):
            outcome = verbs.act(
                runtime.migration, action, reason=body.reason.strip(), dry_run=body.dry_run
            )
    except (StateError, ConflictError) as exc:
        if isinstance(exc, Unreachable):
            raise
        return JSONResponse(
            problem("refused", str(exc), action=action, message=exc.message, hint=exc.hint),
            status_code=409,
        )
    return JSONResponse(_outcome(outcome), status_code=200 if outcome.ok else 409)


def _outcome(outcome: ActionOutcome) -> dict[str, Any]:
    data: dict[str, Any] = jsonable(outcome)
    if not outcome.ok:
        data.update(error="refused" if outcome.outcome == "inconclusive" else "gate_failed")
        data["detail"] = outcome.message
    return data
