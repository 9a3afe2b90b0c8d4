"""The HTTP bodies: requests (validated strictly, unknown fields refused) and answers.

Field names are the job contract's (``userId``, ``noteId``, ``topK``). Types are strict: a
``userId`` must be a non-empty string (an object or an array is refused, never used as a
filter), a number is never a string and a boolean is never a number. ``/embed`` is validated by
the job contract itself (:mod:`constellation.jobs`), as the worker validates; its models here
describe it in the OpenAPI document.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from constellation.jobs import created_problem, text_problem


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _encodable(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def _sane_time(value: int | None) -> int | None:
    if value is not None and (problem := created_problem(value, int(time.time() * 1000))):
        raise ValueError(problem.removeprefix("created "))
    return value


#: text as JSON may carry it but no store takes it (a lone surrogate) is refused by name
Text = Annotated[StrictStr, AfterValidator(_encodable)]
Id = Annotated[
    StrictStr,
    Field(min_length=1, max_length=1024),
    AfterValidator(_not_blank),
    AfterValidator(_encodable),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueryBody(_Body):
    """``POST /query``: the new index, filtered by the user."""

    text: Text
    user_id: Id = Field(alias="userId")
    top_k: StrictInt = Field(10, alias="topK", ge=1)
    #: one model version; default: the versions the migration state reads
    version: StrictInt | None = None
    #: several versions merged, a note's newest version preferred
    versions: list[StrictInt] | None = Field(None, min_length=1, max_length=10)


class SearchBody(_Body):
    """``POST /search``: the app's search during the migration, routed like the router."""

    text: Text
    user_id: Id = Field(alias="userId")
    top_k: StrictInt = Field(10, alias="topK", ge=1)


class NoteBody(_Body):
    """``POST /notes``: the app's write during the migration (old, both or new)."""

    user_id: Id = Field(alias="userId")
    note_id: Id = Field(alias="noteId")
    #: empty text empties the note (its vector is removed)
    text: Text
    #: when the note was last edited, epoch milliseconds (default: now)
    created: Annotated[StrictInt | None, AfterValidator(_sane_time)] = None


class JobBody(BaseModel):
    """One embedding job, exactly as producers put it on the queue (unknown fields ignored)."""

    userId: str
    noteId: str
    text: str
    created: int = Field(description="the note's last edit, epoch milliseconds")
    version: int = Field(description="the model version (declared in the plan)")


def embed_request_schema() -> dict[str, Any]:
    """``/embed``'s body for the OpenAPI document: one job, or ``{"jobs": [...]}``."""
    job = JobBody.model_json_schema()
    batch = {
        "type": "object",
        "properties": {"jobs": {"type": "array", "items": job}},
        "required": ["jobs"],
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": {"oneOf": [job, batch]}}},
    }


# answers -------------------------------------------------------------------------------------
class Result(BaseModel):
    noteId: str
    score: float
    version: int
    created: int


class QueryAnswer(BaseModel):
    results: list[Result]


class SearchAnswer(BaseModel):
    results: list[Result]
    servedBy: Literal["old", "new"]


class Accepted(BaseModel):
    accepted: int
    messageIds: list[str]


class RejectedJob(BaseModel):
    index: int
    reason: str
    detail: str


class Rejected(BaseModel):
    rejected: list[RejectedJob]


class NoteWritten(BaseModel):
    writeMode: Literal["old", "dual", "new"]
    written: list[Literal["old", "new"]]
    #: dual mode: the side that failed (counted, not raised)
    failed: list[Literal["old", "new"]]


class FieldError(BaseModel):
    field: str
    detail: str


class Problem(BaseModel):
    """Every error answer: a short code, a sentence, and what it is about."""

    error: str
    detail: str
    #: 503: the system that cannot be reached (queue, index, model, state store, old system)
    component: str | None = None
    #: 422: every field that is wrong
    fields: list[FieldError] | None = None


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class ActionBody(_Body):
    """``POST /migration/{action}``: why (journaled), and whether only to say what it would do."""

    reason: StrictStr = Field("", max_length=2000)
    dry_run: StrictBool = Field(False, alias="dryRun")


class Readiness(BaseModel):
    ready: bool
    failing: list[str]
    checks: list[Check]
    #: the model version jobs carry by default (the plan's ``default_version``)
    defaultVersion: int
