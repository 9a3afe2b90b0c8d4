"""The distributed queue: Amazon SQS through boto3 (AWS itself, LocalStack or a moto server).

SQS's limits are handled here so callers may ask for any batch size: at most
:data:`~.port.SQS_BATCH_LIMIT` entries per batch or receive call, long polls of at most
:data:`~.port.SQS_MAX_WAIT` seconds, whole seconds for visibility timeouts, and a batch payload
no larger than the queue's ``MaximumMessageSize``. A message SQS would refuse (too large, empty,
bad characters or attributes) is reported as a per-entry failure before AWS is called, and every
``Failed`` entry AWS returns lands in :attr:`BatchResult.failed` under its input index.

Errors about the queue itself (missing, credentials, unreachable endpoint) are raised as
:class:`~constellation.errors.QueueError` with a next step; see :mod:`.aws`.

The broker is here; the queue, :class:`SqsQueue`, is in :mod:`.sqs_queue` and the batch limits
and per-entry checks it applies are in :mod:`.sqs_batches` (both importable from here too).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from constellation.errors import ConflictError, QueueError, QueueNotFound
from constellation.queues.aws import SqsTimeouts, aws_errors, provision_hint, sqs_client
from constellation.queues.port import QueueInfo, QueueSpec, Redrive

# re-exported, so that these stay importable from this module
from constellation.queues.sqs_batches import MAX_ATTRIBUTES as MAX_ATTRIBUTES
from constellation.queues.sqs_batches import message_size as message_size
from constellation.queues.sqs_queue import SqsQueue as SqsQueue
from constellation.queues.sqs_queue import queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType


class SqsBroker:
    """Creates, inspects and opens SQS queues through one boto3 client.

    ``env`` only shapes the hint of a "queue does not exist" error
    (``constellation provision --env ENV``).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 20,
        *,
        env: str | None = None,
        timeouts: SqsTimeouts = SqsTimeouts(),
    ) -> None:
        self.endpoint_url = endpoint_url
        self._hint = provision_hint(env)
        self._client = sqs_client(endpoint_url, region, max_pool_connections, timeouts)

    def inspect(self, name: str) -> QueueInfo | None:
        url = self._url(name)
        if url is None:
            return None
        try:
            with self._errors(name):
                attributes = self._client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["All"]
                )["Attributes"]
        except QueueNotFound:
            return None  # deleted between the two calls
        return QueueInfo(
            name=name,
            url=url,
            visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
            redrive=_redrive(attributes.get("RedrivePolicy")),
            max_message_size=int(attributes.get("MaximumMessageSize", 262_144)),
            depth=queue_depth(attributes),
            created=_created(attributes.get("CreatedTimestamp")),
            fifo=attributes.get("FifoQueue") == "true",
        )

    def create(self, spec: QueueSpec) -> QueueInfo:
        # CreateQueue silently returns an existing queue with the same settings; the port says
        # create is for new queues only, so look first (provisioning compares via inspect).
        if self._url(spec.name) is not None:
            raise ConflictError(
                f"queue {spec.name} already exists",
                "compare it with the plan (`constellation describe`) instead of creating it",
            )
        attributes: dict[QueueAttributeNameType, str] = {
            "VisibilityTimeout": str(spec.visibility_timeout)
        }
        if spec.redrive is not None:
            policy = {
                "deadLetterTargetArn": self._arn(spec.redrive.dead_letter),
                "maxReceiveCount": spec.redrive.max_receive_count,
            }
            attributes["RedrivePolicy"] = json.dumps(policy)
        if spec.fifo:
            # one note's jobs in order (MessageGroupId); a resend within 5 minutes dropped
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = "true"
        with self._errors(spec.name):
            self._client.create_queue(QueueName=spec.name, Attributes=attributes)
        info = self.inspect(spec.name)
        if info is None:
            raise QueueError(f"queue {spec.name} was created but cannot be read back")
        return info

    def delete_queue(self, name: str) -> None:
        url = self._url(name)
        if url is None:
            return
        try:
            with self._errors(name):
                self._client.delete_queue(QueueUrl=url)
        except QueueNotFound:
            pass  # someone else deleted it first: the outcome is the same

    def open(self, name: str) -> SqsQueue:
        url = self._url(name)
        if url is None:
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise QueueNotFound(f"queue {name} does not exist{where}", self._hint)
        with self._errors(name):
            attributes = self._client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["MaximumMessageSize"]
            )["Attributes"]
        return SqsQueue(
            self._client,
            name,
            url,
            max_message_size=int(attributes["MaximumMessageSize"]),
            endpoint_url=self.endpoint_url,
            hint=self._hint,
        )

    def close(self) -> None:
        self._client.close()

    def _url(self, name: str) -> str | None:
        """The queue's URL, or None when it does not exist."""
        try:
            with self._errors(name):
                return self._client.get_queue_url(QueueName=name)["QueueUrl"]
        except QueueNotFound:
            return None

    def _arn(self, name: str) -> str:
        url = self._url(name)
        if url is None:
            raise QueueNotFound(
                f"dead-letter queue {name} does not exist",
                "create the dead-letter queue before the queue that redrives to it",
            )
        with self._errors(name):
            attributes = self._client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]
        return attributes["QueueArn"]

    def _errors(self, name: str) -> AbstractContextManager[None]:
        return aws_errors(queue=name, endpoint_url=self.endpoint_url, hint=self._hint)


def _redrive(policy: str | None) -> Redrive | None:
    if not policy:
        return None
    parsed = json.loads(policy)
    # arn:aws:sqs:<region>:<account>:<name>
    dead_letter = str(parsed["deadLetterTargetArn"]).rsplit(":", 1)[-1]
    return Redrive(dead_letter=dead_letter, max_receive_count=int(parsed["maxReceiveCount"]))


def _created(value: str | None) -> float | None:
    """SQS's ``CreatedTimestamp`` (epoch seconds, as a string), if it gave one."""
    try:
        return float(value) if value else None
    except ValueError:
        return None
