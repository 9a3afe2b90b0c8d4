"""The job contract: the JSON body producers put on the embed queue.

``{"userId": str, "noteId": str, "text": str, "created": int epoch-ms, "version": int}``

Unknown fields are ignored (producers may add some). One optional field: ``"force": true``
(sent by ``requeue --force``) lets the job replace a stored record even when that record is
newer, for a record newer than its source row that only the source may correct. A body that breaks the contract is not
retried: :func:`parse_job` returns a :class:`Rejection` whose ``reason`` is one of
:data:`REASONS`, and the worker sends the message to the dead-letter queue with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

#: why a job was rejected; the dead-letter message carries one of these as its ``reason``
REASONS = (
    "too_large",
    "not_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "empty_id",
    "unknown_version",
)

_FIELDS: dict[str, type] = {
    "userId": str,
    "noteId": str,
    "text": str,
    "created": int,
    "version": int,
}


@dataclass(frozen=True)
class Job:
    """One valid embedding job."""

    user_id: str
    note_id: str
    text: str
    #: when the note was written, epoch milliseconds (newer wins)
    created: int
    version: int
    #: replace the stored record even if it is newer (an operator's forced requeue)
    force: bool = False

    def to_body(self) -> str:
        """The job as producers send it."""
        body: dict[str, Any] = {
            "userId": self.user_id,
            "noteId": self.note_id,
            "text": self.text,
            "created": self.created,
            "version": self.version,
        }
        if self.force:
            body["force"] = True
        return json.dumps(body, ensure_ascii=False)


@dataclass(frozen=True)
class Rejection:
    """Why a body is not a valid job: a ``reason`` code and a human ``detail``."""

    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def parse_job(body: str, *, versions: Collection[int], max_bytes: int) -> Job | Rejection:
    """Validate one message body against the contract."""
    size = len(body.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        return Rejection("too_large", f"body is {size} bytes, the limit is {max_bytes}")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return Rejection("not_json", f"body is not JSON ({exc.msg} at {exc.pos})")
    except ValueError as exc:  # e.g. lone surrogates
        return Rejection("not_json", f"body is not JSON ({exc})")
    except RecursionError:
        return Rejection("not_json", TOO_DEEP)
    return job_from_dict(data, versions=versions)


#: what a body nested deeper than Python's JSON decoder goes is told
TOO_DEEP = "the JSON is nested too deeply (a job is one flat object)"

#: 1990-01-01 in epoch milliseconds: the earliest ``created`` an outside producer may give
EARLIEST_CREATED = 631_152_000_000
#: how far ahead of this machine's clock a ``created`` may be (clocks differ; not by a day)
AHEAD_MS = 86_400_000


def created_problem(created: int, now_ms: int) -> str | None:
    """Why ``created`` (epoch ms) is no time a note was edited, or None. A note stored with a
    time far ahead could never be replaced (newer edits win), and seconds are not ms."""
    if EARLIEST_CREATED <= created <= now_ms + AHEAD_MS:
        return None
    return (
        f"created must be epoch milliseconds between 1990-01-01 and a day from now, got {created}"
    )


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a lone surrogate, which JSON's ``\\ud800``
    escapes can carry and no UTF-8 encoder takes), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = f"U+{ord(value[exc.start]):04X}"
        return f"holds a lone surrogate ({code}) at character {exc.start}: not encodable text"
    return None


def job_from_dict(
    data: Any, *, versions: Collection[int], now_ms: int | None = None
) -> Job | Rejection:
    """Validate already-decoded job data (used by ``enqueue`` before anything is sent);
    ``created`` is held to :func:`created_problem`'s window when ``now_ms`` is given (where
    jobs come from outside: ``/embed``, ``enqueue``)."""
    if not isinstance(data, dict):
        return Rejection("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        return Rejection("missing_field", f"missing {', '.join(missing)}")
    for name, kind in _FIELDS.items():
        value = data[name]
        # JSON true/false are Python bools, which are ints: never accept them as numbers.
        if not isinstance(value, kind) or isinstance(value, bool):
            return Rejection(
                "wrong_type", f"{name} must be {_TYPE_NAMES[kind]}, got {_json_type(value)}"
            )
    for name in ("userId", "noteId", "text"):
        if problem := text_problem(data[name]):
            return Rejection("not_text", f"{name} {problem}")
    for name in ("userId", "noteId"):
        if not data[name].strip():
            return Rejection("empty_id", f"{name} is empty")
    if now_ms is not None and (problem := created_problem(data["created"], now_ms)):
        return Rejection("bad_time", problem)
    if data["version"] not in versions:
        declared = ", ".join(str(v) for v in sorted(versions))
        return Rejection(
            "unknown_version", f"version {data['version']} is not declared (plan has {declared})"
        )
    force = data.get("force", False)
    if not isinstance(force, bool):
        return Rejection("wrong_type", f"force must be a boolean, got {_json_type(force)}")
    return Job(
        data["userId"], data["noteId"], data["text"], data["created"], data["version"], force
    )


def ids_of(body: str) -> tuple[str | None, str | None, int | None]:
    """User, note and version of a body that may break the contract, as far as it has them."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    user, note, version = data.get("userId"), data.get("noteId"), data.get("version")
    return (
        user if isinstance(user, str) else None,
        note if isinstance(note, str) else None,
        version if isinstance(version, int) and not isinstance(version, bool) else None,
    )


_TYPE_NAMES = {str: "a string", int: "an integer"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
