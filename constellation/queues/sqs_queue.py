"""One SQS queue behind the queue port: send, receive, delete and change visibility in batches.

Open one with :meth:`constellation.queues.sqs.SqsBroker.open`. How entries are checked against
SQS's limits and grouped into batches is :mod:`.sqs_batches`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from constellation.errors import QueueError
from constellation.queues.aws import aws_errors, entry_level_reason
from constellation.queues.port import (
    SQS_BATCH_LIMIT,
    SQS_MAX_WAIT,
    BatchResult,
    Message,
    Outgoing,
    QueueDepth,
    is_fifo_name,
)
from constellation.queues.sqs_batches import batch_entry, collect_failed, send_chunks

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import MessageSystemAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

_R = TypeVar("_R")

_MESSAGE_SYSTEM_ATTRIBUTES: list[MessageSystemAttributeNameType] = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "MessageGroupId",
]


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
        #: SQS FIFO queues are the ones named so
        self.fifo = is_fifo_name(name)

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
        for chunk in send_chunks(messages, self._max_message_size, failed):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                batch_entry(index, message, fifo=self.fifo) for index, message in chunk
            ]
            response = self._batch_call(
                partial(self._client.send_message_batch, QueueUrl=self.url, Entries=entries),
                [index for index, _ in chunk],
                failed,
            )
            if response is not None:
                for ok in response.get("Successful", []):
                    sent[int(ok["Id"])] = ok["MessageId"]
                collect_failed(response.get("Failed", []), failed)
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

    def release_batch(self, receipts: Sequence[str]) -> BatchResult:
        # SQS has no way to lower ApproximateReceiveCount: visible again at once, counted.
        return self.change_visibility_batch(receipts, 0)

    def depth(self) -> QueueDepth:
        with self._errors():
            attributes = self._client.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return queue_depth(attributes)

    def purge(self) -> None:
        with self._errors():
            self._client.purge_queue(QueueUrl=self.url)

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
                collect_failed(response.get("Failed", []), failed)
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
        group=system.get("MessageGroupId"),
    )


def queue_depth(attributes: Mapping[Any, str]) -> QueueDepth:
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _seconds(timeout: float) -> int:
    """SQS takes whole seconds: round up, so a message is never released early."""
    return max(0, math.ceil(timeout))
