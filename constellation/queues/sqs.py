"""The distributed queue: Amazon SQS through boto3 (AWS itself, LocalStack or a moto server).

SQS's limits are handled here so callers may ask for any batch size: at most
:data:`~.port.SQS_BATCH_LIMIT` entries per batch or receive call, long polls of at most
:data:`~.port.SQS_MAX_WAIT` seconds, whole seconds for visibility timeouts, and a batch payload
no larger than the queue's ``MaximumMessageSize``. A message SQS would refuse (too large, empty,
bad characters or attributes) is reported as a per-entry failure before AWS is called, and every
``Failed`` entry AWS returns lands in :attr:`BatchResult.failed` under its input index.

Errors about the queue itself (missing, credentials, unreachable endpoint) are raised as
:class:`~constellation.errors.QueueError` with a next step; see :mod:`.aws`.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from constellation.errors import ConflictError, QueueError, QueueNotFound
from constellation.queues.aws import (
    aws_errors,
    entry_level_reason,
    provision_hint,
    sqs_client,
)
from constellation.queues.port import (
    SQS_BATCH_LIMIT,
    SQS_MAX_WAIT,
    BatchResult,
    Message,
    Outgoing,
    QueueDepth,
    QueueInfo,
    QueueSpec,
    Redrive,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import MessageSystemAttributeNameType, QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

_R = TypeVar("_R")

#: SQS refuses a message with more user attributes than this
MAX_ATTRIBUTES = 10
#: characters SQS accepts in a body or attribute (anything else is InvalidMessageContents)
_INVALID_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MESSAGE_SYSTEM_ATTRIBUTES: list[MessageSystemAttributeNameType] = [
    "ApproximateReceiveCount",
    "SentTimestamp",
]


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
    ) -> None:
        self.endpoint_url = endpoint_url
        self._hint = provision_hint(env)
        self._client = sqs_client(endpoint_url, region, max_pool_connections)

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
            depth=_depth(attributes),
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


class SqsQueue:
    """One SQS queue. See :class:`~.port.Queue`; open it with :meth:`SqsBroker.open`."""

    def __init__(
        self,
        client: SQSClient,
        name: str,
        url: str,
        *,
        max_message_size: int,
        endpoint_url: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._client = client
        self._max_message_size = max_message_size
        self._endpoint_url = endpoint_url
        self._hint = hint

    @property
    def max_message_size(self) -> int:
        return self._max_message_size

    def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        result = self.send_batch([Outgoing(body, attributes or {})])
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")
        return result.succeeded[0]

    def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        sent: dict[int, str] = {}
        failed: dict[int, str] = {}
        for chunk in self._send_chunks(messages, failed):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                _entry(index, message) for index, message in chunk
            ]
            response = self._batch_call(
                partial(self._client.send_message_batch, QueueUrl=self.url, Entries=entries),
                [index for index, _ in chunk],
                failed,
            )
            if response is not None:
                for ok in response.get("Successful", []):
                    sent[int(ok["Id"])] = ok["MessageId"]
                _collect_failed(response.get("Failed", []), failed)
        return BatchResult(
            succeeded=[sent[index] for index in sorted(sent)], failed=dict(sorted(failed.items()))
        )

    def receive(
        self,
        max_messages: int = 10,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
    ) -> list[Message]:
        extra: dict[str, Any] = {}
        if visibility_timeout is not None:
            extra["VisibilityTimeout"] = _seconds(visibility_timeout)
        wait = min(SQS_MAX_WAIT, _seconds(wait_seconds))
        taken: dict[str, Message] = {}
        # Only the first call waits: later calls fill the batch from what is already there.
        while len(taken) < max_messages:
            with self._errors():
                response = self._client.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=min(SQS_BATCH_LIMIT, max_messages - len(taken)),
                    WaitTimeSeconds=wait,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=_MESSAGE_SYSTEM_ATTRIBUTES,
                    **extra,
                )
            wait = 0
            before = len(taken)
            for raw in response.get("Messages", []):
                message = _message(raw)
                # With a visibility timeout of 0 a message can come back in the next call;
                # keep its latest receipt, and stop when a call brings nothing new.
                taken[message.id] = message
            if len(taken) == before:
                break
        return list(taken.values())

    def delete(self, receipt: str) -> None:
        result = self.delete_batch([receipt])
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")

    def delete_batch(self, receipts: Sequence[str]) -> BatchResult:
        return self._per_receipt(
            receipts,
            lambda entries: self._client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": i, "ReceiptHandle": r} for i, r in entries],
            ),
        )

    def change_visibility(self, receipt: str, timeout: float) -> None:
        result = self.change_visibility_batch([receipt], timeout)
        if result.failed:
            raise QueueError(f"{self.name}: {result.failed[0]}")

    def change_visibility_batch(self, receipts: Sequence[str], timeout: float) -> BatchResult:
        seconds = _seconds(timeout)
        return self._per_receipt(
            receipts,
            lambda entries: self._client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": i, "ReceiptHandle": r, "VisibilityTimeout": seconds} for i, r in entries
                ],
            ),
        )

    def depth(self) -> QueueDepth:
        with self._errors():
            attributes = self._client.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return _depth(attributes)

    def purge(self) -> None:
        with self._errors():
            self._client.purge_queue(QueueUrl=self.url)

    def _send_chunks(
        self, messages: Sequence[Outgoing], failed: dict[int, str]
    ) -> Iterator[list[tuple[int, Outgoing]]]:
        """Entries SQS would accept, grouped by the entry-count and total-size limits."""
        chunk: list[tuple[int, Outgoing]] = []
        chunk_bytes = 0
        for index, message in enumerate(messages):
            problem = _problem(message, self._max_message_size)
            if problem:
                failed[index] = problem
                continue
            size = message_size(message)
            if chunk and (
                len(chunk) == SQS_BATCH_LIMIT or chunk_bytes + size > self._max_message_size
            ):
                yield chunk
                chunk, chunk_bytes = [], 0
            chunk.append((index, message))
            chunk_bytes += size
        if chunk:
            yield chunk

    def _per_receipt(
        self, receipts: Sequence[str], call: Callable[[list[tuple[str, str]]], Any]
    ) -> BatchResult:
        """Run a receipt batch call in chunks of ten; entry ids are input indexes."""
        done: set[int] = set()
        failed: dict[int, str] = {}
        for start in range(0, len(receipts), SQS_BATCH_LIMIT):
            indexes = range(start, min(start + SQS_BATCH_LIMIT, len(receipts)))
            entries = [(str(index), receipts[index]) for index in indexes]
            response = self._batch_call(partial(call, entries), indexes, failed)
            if response is not None:
                done.update(int(ok["Id"]) for ok in response.get("Successful", []))
                _collect_failed(response.get("Failed", []), failed)
        return BatchResult(
            succeeded=[receipts[index] for index in sorted(done)],
            failed=dict(sorted(failed.items())),
        )

    def _batch_call(
        self, call: Callable[[], _R], indexes: Sequence[int], failed: dict[int, str]
    ) -> _R | None:
        """Make one batch call; a refusal of its content fails its entries, else raises."""
        try:
            with self._errors():
                return call()
        except QueueError as err:
            reason = entry_level_reason(err.__cause__) if err.__cause__ else None
            if reason is None:
                raise
            for index in indexes:
                failed[index] = reason
            return None

    def _errors(self) -> AbstractContextManager[None]:
        return aws_errors(queue=self.name, endpoint_url=self._endpoint_url, hint=self._hint)


def message_size(message: Outgoing) -> int:
    """Bytes as SQS counts them: the body plus each attribute's name, type and value."""
    extra = sum(
        len(name.encode()) + len(b"String") + len(value.encode())
        for name, value in message.attributes.items()
    )
    return len(message.body.encode()) + extra


def _problem(message: Outgoing, limit: int) -> str | None:
    """Why SQS would refuse this message, checked locally so one entry never fails a batch."""
    size = message_size(message)
    if size > limit:
        return f"message of {size} bytes is over the queue's limit of {limit} bytes"
    if not message.body:
        return "SQS refuses an empty message body"
    if len(message.attributes) > MAX_ATTRIBUTES:
        count = len(message.attributes)
        return f"SQS allows at most {MAX_ATTRIBUTES} attributes, this message has {count}"
    for name, value in message.attributes.items():
        if not value:
            return f"attribute {name!r} is empty; SQS refuses empty attribute values"
    texts = [message.body, *message.attributes.values()]
    if any(_INVALID_CHARACTER.search(text) for text in texts):
        return "message contains characters SQS refuses (control characters or lone surrogates)"
    return None


def _entry(index: int, message: Outgoing) -> SendMessageBatchRequestEntryTypeDef:
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": message.body}
    if message.attributes:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        }
        entry["MessageAttributes"] = attributes
    return entry


def _message(raw: MessageTypeDef) -> Message:
    system = raw.get("Attributes", {})
    attributes: dict[str, str] = {}
    for name, value in raw.get("MessageAttributes", {}).items():
        if "StringValue" in value:  # String and Number
            attributes[name] = value["StringValue"]
        elif "BinaryValue" in value:  # only other producers send these
            attributes[name] = base64.b64encode(value["BinaryValue"]).decode()
    return Message(
        id=raw["MessageId"],
        receipt=raw["ReceiptHandle"],
        body=raw["Body"],
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_at=int(system.get("SentTimestamp", 0)) / 1000,
        attributes=attributes,
    )


def _collect_failed(entries: Sequence[Mapping[str, Any]], failed: dict[int, str]) -> None:
    for bad in entries:
        reason = str(bad.get("Code", "Failed"))
        if bad.get("Message"):
            reason = f"{reason}: {bad['Message']}"
        failed[int(bad["Id"])] = reason


def _redrive(policy: str | None) -> Redrive | None:
    if not policy:
        return None
    parsed = json.loads(policy)
    # arn:aws:sqs:<region>:<account>:<name>
    dead_letter = str(parsed["deadLetterTargetArn"]).rsplit(":", 1)[-1]
    return Redrive(dead_letter=dead_letter, max_receive_count=int(parsed["maxReceiveCount"]))


def _depth(attributes: Mapping[Any, str]) -> QueueDepth:
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _seconds(timeout: float) -> int:
    """SQS takes whole seconds: round up, so a message is never released early."""
    return max(0, math.ceil(timeout))
