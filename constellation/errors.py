"""The one error hierarchy of Constellation.

Every error the tool raises on purpose is a :class:`ConstellationError`. Low-level errors
(botocore, chromadb, SQL, torch) are re-raised as one of these with ``from exc`` and a sentence
that tells the operator what to do next; the CLI prints that one line and exits with the
error's ``exit_code`` (the traceback only with ``--debug``). The exit codes are the same for
every command: 0 ok; 1 a gate or check failed (and any other error of ours); 2 a usage, plan or
input-file error; 3 a gate or check that could not decide (:class:`GateInconclusive`); 4 an
outside system could not be reached (:class:`Unreachable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from constellation.jobs import Rejection

from constellation.masking import masked


class ConstellationError(Exception):
    """Base class: ``str(err)`` is the whole message, ``hint`` the next step (may be empty)."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        # Messages quote URLs and low-level errors: no password in them ever reaches a
        # terminal, a log or a stored row (constellation.masking).
        message, hint = masked(message), masked(hint)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PlanError(ConstellationError):
    """A plan that cannot be used; ``issues`` lists every problem found, not only the first."""

    exit_code = 2

    def __init__(self, issues: list[PlanIssue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        noun = "problem" if len(issues) == 1 else "problems"
        super().__init__(f"invalid plan ({len(issues)} {noun}):\n{lines}")


class InputFileError(ConstellationError):
    """A file the operator gave (a judged query set, ...) that cannot be used; ``issues`` names
    each problem's file, line and field, every one at once."""

    exit_code = 2

    def __init__(self, what: str, issues: list[PlanIssue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        noun = "problem" if len(issues) == 1 else "problems"
        super().__init__(f"invalid {what} ({len(issues)} {noun}):\n{lines}")


class Unreachable(ConstellationError):
    """An outside system (queue, index, database, Prometheus) could not be reached: exit 4.

    A mixin of the error of the system's own kind, so ``except QueueError`` still catches an
    unreachable queue, and scripts tell "the gate failed" (1) from "it could not look" (4).
    """

    exit_code = 4


class AdapterError(ConstellationError):
    """An adapter name that does not exist, or an adapter whose library is missing."""


class QueueError(ConstellationError):
    """The queue refused or failed an operation."""


class QueueNotFound(QueueError):
    """A queue the plan names does not exist yet."""


class QueueUnreachable(Unreachable, QueueError):
    """The queue's server (SQS, LocalStack, moto) could not be reached."""


class VectorIndexError(ConstellationError):
    """The vector index refused or failed an operation."""


class IndexNotFound(VectorIndexError):
    """The index the plan names does not exist yet."""


class PartitionMissing(IndexNotFound):
    """One partition collection of an index that exists is gone (deleted outside
    Constellation): ``provision`` recreates it, ``requeue --missing`` refills it."""

    def __init__(self, index: str, partition: str) -> None:
        super().__init__(
            f"partition {partition} of index {index} is missing (deleted outside Constellation)",
            "run `constellation provision` to recreate it empty, then `constellation requeue "
            "--missing` to send its users' notes again",
        )


class IndexUnreachable(Unreachable, VectorIndexError):
    """The vector index's server (``chroma run``) could not be reached."""


class IndexLocked(VectorIndexError):
    """Another process holds the embedded index's writer lock."""


class ManifestDamaged(VectorIndexError):
    """An index's manifest (the collection whose metadata records its layout) holds values no
    layout has: nothing may be read or removed by a guessed layout. Exit 1."""

    def __init__(self, index: str, problem: str) -> None:
        self.index = index
        super().__init__(
            f"the manifest of index {index} is damaged ({problem}); its records were not read "
            "and nothing was changed",
            f"set it back with `constellation index repair` (it reads the layout from the "
            f"partitions {index} has), or restore the index from a backup",
        )


class DimensionMismatch(VectorIndexError):
    """A vector, a model or an existing index disagrees with the plan's dimension."""


class ModelError(ConstellationError):
    """The embedding model could not be loaded or failed to embed."""


class ConflictError(ConstellationError):
    """An existing resource differs from what the plan asks for; nothing was changed."""


class StateError(ConstellationError):
    """The migration state forbids the requested transition."""


class ConfirmationNeeded(StateError):
    """A change the operator must confirm first (``--yes``), e.g. a traffic jump of more than
    one step."""


class GateFailed(ConstellationError):
    """A gate between migration steps did not pass; ``gate`` holds what was measured.

    Raised by a gated step when its gate fails; phase 2 catches it to send read traffic back
    to 0. Uncaught, the command exits 1, like any report whose gate failed.
    """

    def __init__(self, message: str, hint: str = "", gate: object = None) -> None:
        super().__init__(message, hint)
        self.gate = gate


class LegacyError(ConstellationError):
    """The old system (the app's own index) could not be read or written."""


class DamagedFile(ConstellationError):
    """A file of ours that cannot be read as what it should be (a damaged SQLite file, an
    emptied index, a truncated archive): names the file and what to do about it.

    Not "unreachable": the file is there, and retrying will not help.
    """

    def __init__(self, path: object, what: str, detail: str, hint: str) -> None:
        self.path = str(path)
        #: which file of ours: "the migration state", "the queue file", "the index file", ...
        self.what = what
        super().__init__(f"{what} {self.path} is damaged ({detail})", hint)


class GateInconclusive(ConstellationError):
    """A gate that could not decide: not enough evidence yet (too few comparisons). Exit 3.

    Phase 2 catches it to leave the read traffic where it is: the operator waits, or lets the
    app search, and runs the step again.
    """

    exit_code = 3

    def __init__(self, message: str, hint: str = "", gate: object = None) -> None:
        super().__init__(message, hint)
        self.gate = gate


class SourceError(ConstellationError):
    """The notes source (the app's database) could not be read."""


class UnusableValue(ValueError):
    """A notes-source column value that cannot become part of a note (the reason is the
    message); the row is skipped and reported, never sent (constellation.migration.source)."""


class JobRejected(ConstellationError):
    """A job that breaks the contract; nothing was sent."""


class JobsRejected(Exception):
    """Some jobs of a service request break the contract; none of the request was sent (the
    service answers 422 with each one's index and reason)."""

    def __init__(self, rejected: list[tuple[int, Rejection]]) -> None:
        super().__init__(f"{len(rejected)} job(s) rejected")
        self.rejected = rejected


class InvalidField(ConstellationError):
    """A service request's field that is well-formed but wrong for this plan (an undeclared
    version, a topK over the plan's maximum): a 422 naming it."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class UnknownVersion(InvalidField):
    """A search asked for a model version the plan does not declare (exit 2; a 422 naming the
    field that asked for it)."""

    exit_code = 2

    def __init__(self, version: int, declared: Iterable[int], field: str = "versions") -> None:
        self.version = version
        self.declared = tuple(sorted(declared))
        listed = ", ".join(str(v) for v in self.declared)
        super().__init__(field, f"version {version} is not declared (plan has {listed})")


class NoteNotFound(ConstellationError):
    """A note asked for by user and id that no system holds for that user (exit 2: a bad
    value), naming the user who does hold it, if one does."""

    exit_code = 2


class MonitoringError(ConstellationError):
    """Metrics could not be served, recorded or read."""


class MonitoringUnreachable(Unreachable, MonitoringError):
    """The plan's Prometheus server could not be reached."""


class DatabaseUnreachable(Unreachable):
    """A SQL database (the notes source, the migration state) could not be connected to."""


class ImportSourceError(ConstellationError):
    """An import source (a git repository, a folder, a Notion export) cannot be read."""

    #: the operator named something that is not there or not usable: a usage error
    exit_code = 2


class Unavailable(ConstellationError):
    """A system the request needs cannot be reached; ``component`` names it (the HTTP service
    answers 503 with that name): ``queue``, ``index``, ``model``, ``state store``, ``old system``."""

    def __init__(self, component: str, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.component = component


class ProviderUnavailable(Unavailable, Unreachable, ModelError):
    """The embedding provider cannot serve us now: out of reach, failing, rate limiting past a
    deadline, refusing our key, or answering vectors of another length than the plan's.

    Never a job's failure: the worker gives its jobs back to the queue uncounted and stops
    receiving until a probe succeeds (the circuit breaker); a search answers 503 naming the
    provider (exit 4 on the command line). ``kind`` says which of these it is.
    """

    def __init__(self, message: str, hint: str = "", *, kind: str = "unreachable") -> None:
        super().__init__("embedding provider", message, hint)
        #: "unreachable", "server error", "timeout", "rate limited", "key refused", "refused",
        #: "dimension", or "open" (the breaker is open: not asked at all)
        self.kind = kind


class InputsRejected(ModelError):
    """The provider refused some texts of a call for what they are (too long, bad content);
    ``rejected`` maps each one's position to the provider's reason, ``vectors`` holds the
    others' rows (the rejected rows are NaN). Those jobs alone go to the dead-letter queue."""

    def __init__(self, rejected: dict[int, str], vectors: np.ndarray) -> None:
        first = next(iter(rejected.values()), "")
        super().__init__(f"the provider refused {len(rejected)} text(s): {first}")
        self.rejected = rejected
        self.vectors = vectors
