"""The one place a boto3 SQS client is built, and the one place AWS errors become ours.

boto3 and botocore are imported inside the functions, never at module level: importing this
module (or :mod:`constellation.queues.sqs`) stays cheap, and ``constellation --help`` never
loads boto3.

Credentials always come from boto3's standard chain (environment, ``AWS_PROFILE`` and the shared
files, container or instance roles). Nothing here hard-codes a key, not even for LocalStack or
moto, which accept any value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from constellation.errors import ConstellationError, QueueError, QueueNotFound, QueueUnreachable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: the region a LocalStack or moto endpoint gets when nothing else names one
LOCAL_ENDPOINT_REGION = "us-east-1"

_NOT_FOUND = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidSecurity",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
    }
)
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
_THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "RequestThrottled", "ServiceUnavailable"}
)
#: errors about the queue or the connection, never about one batch's entries
_QUEUE_LEVEL = _NOT_FOUND | _BAD_CREDENTIALS | _ACCESS_DENIED | _THROTTLED

CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
    "(any value works for LocalStack or moto)"
)


def provision_hint(env: str | None = None) -> str:
    """The next step when a queue is missing: provision it for the same environment."""
    flag = f" --env {env}" if env else ""
    return f"run `constellation provision{flag}` first"


@dataclass(frozen=True)
class SqsTimeouts:
    """How long one SQS call may take: each attempt connects within ``connect`` seconds and
    gets its answer within ``read`` (a long poll holds the connection for up to 20 s, so the
    read limit must outlast it), and a call makes at most ``attempts`` attempts in all. One
    call therefore ends within ``attempts × (connect + read)`` seconds plus botocore's backoff
    (under a second per retry in ``standard`` mode), however the endpoint behaves."""

    connect: float = 10.0
    read: float = 40.0
    attempts: int = 3


def sqs_client(
    endpoint_url: str | None,
    region: str | None,
    max_pool_connections: int = 20,
    timeouts: SqsTimeouts = SqsTimeouts(),
) -> SQSClient:
    """Build an SQS client: AWS itself when ``endpoint_url`` is None, else LocalStack or moto.

    Credentials come from boto3's standard chain. Retries use botocore's ``standard`` mode
    (throttling and transient errors, with backoff) within ``timeouts``;
    ``max_pool_connections`` should be at least the number of threads that share the client
    (the worker's ``max_concurrency``).
    """
    import boto3.session
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": timeouts.attempts},
        max_pool_connections=max_pool_connections,
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
    )
    with aws_errors(endpoint_url=endpoint_url):
        session = boto3.session.Session(region_name=region)
        if session.region_name is None and endpoint_url:
            # LocalStack and moto ignore the region, but botocore refuses to sign without one.
            session = boto3.session.Session(region_name=LOCAL_ENDPOINT_REGION)
        return session.client("sqs", endpoint_url=endpoint_url, config=config)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def entry_level_reason(exc: BaseException) -> str | None:
    """A per-entry failure reason when a whole batch call was refused for its content.

    A batch call can be refused as a whole (entries too long together, a bad attribute): then
    every entry of that call failed, and the caller is told so entry by entry. Errors about the
    queue, the credentials, the connection or AWS itself return None: those are raised.
    """
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return None
    code = error_code(exc) or "Unknown"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    if code in _QUEUE_LEVEL or status >= 500:
        return None
    return f"{code}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")


def queue_error(
    exc: BaseException,
    *,
    queue: str | None = None,
    endpoint_url: str | None = None,
    hint: str | None = None,
) -> QueueError:
    """Turn a botocore error into ours, with a sentence that says what to do next.

    ``hint`` is the next step when the queue is missing (default: :func:`provision_hint`).
    """
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    where = endpoint_url or "the AWS endpoint"
    subject = f"queue {queue}" if queue else "SQS"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return QueueError(f"no AWS credentials found for {where}", CREDENTIALS_HINT)
    if isinstance(exc, NoRegionError):
        return QueueError(
            "no AWS region configured for SQS",
            "set queue.region in the plan, or AWS_DEFAULT_REGION",
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return QueueUnreachable(
            f"cannot reach SQS at {where}: {exc}",
            "start the server (LocalStack, moto) or fix queue.endpoint_url in the plan"
            if endpoint_url
            else "check the network and the plan's queue.region",
        )
    if not isinstance(exc, ClientError):
        return QueueError(f"{subject}: {exc}")

    code = error_code(exc) or "Unknown"
    operation = exc.operation_name
    detail = exc.response.get("Error", {}).get("Message", "") or code
    if code in _NOT_FOUND:
        return QueueNotFound(f"{subject} does not exist", hint or provision_hint())
    if code in _BAD_CREDENTIALS:
        return QueueError(f"{where} rejected the AWS credentials ({code})", CREDENTIALS_HINT)
    if code in _ACCESS_DENIED:
        return QueueError(
            f"not allowed to call {operation} on {subject}",
            f"grant the IAM permission sqs:{operation} to these credentials",
        )
    if code in _THROTTLED:
        return QueueError(f"SQS throttled {operation} on {subject}", "try again in a minute")
    if code == "AWS.SimpleQueueService.QueueDeletedRecently":
        return QueueError(
            f"{subject} was deleted less than 60 seconds ago",
            "wait a minute before creating it again",
        )
    if code in {"QueueAlreadyExists", "QueueNameExists"}:
        return QueueError(
            f"{subject} already exists with different settings",
            "compare it with the plan (`constellation describe`) and delete it or change the plan",
        )
    return QueueError(f"SQS {operation} failed on {subject}: {code}: {detail}")


@contextmanager
def aws_errors(
    *, queue: str | None = None, endpoint_url: str | None = None, hint: str | None = None
) -> Iterator[None]:
    """Re-raise botocore errors raised inside the block as :func:`queue_error` (``from exc``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ConstellationError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise queue_error(exc, queue=queue, endpoint_url=endpoint_url, hint=hint) from exc
