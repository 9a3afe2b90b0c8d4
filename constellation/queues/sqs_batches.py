"""SQS's per-batch limits, applied before AWS is called, and its per-entry failures collected.

A batch holds at most :data:`~.port.SQS_BATCH_LIMIT` entries and no more bytes than the queue's
``MaximumMessageSize``; a message SQS would refuse fails on its own instead of failing its batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from constellation.queues.port import SQS_BATCH_LIMIT, Outgoing

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

#: SQS refuses a message with more user attributes than this
MAX_ATTRIBUTES = 10
#: characters SQS accepts in a body or attribute (anything else is InvalidMessageContents)
_INVALID_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def send_chunks(
    messages: Sequence[Outgoing], max_message_size: int, failed: dict[int, str]
) -> Iterator[list[tuple[int, Outgoing]]]:
    """Entries SQS would accept, grouped by the entry-count and total-size limits."""
    chunk: list[tuple[int, Outgoing]] = []
    chunk_bytes = 0
    for index, message in enumerate(messages):
        problem = entry_problem(message, max_message_size)
        if problem:
            failed[index] = problem
            continue
        size = message_size(message)
        if chunk and (len(chunk) == SQS_BATCH_LIMIT or chunk_bytes + size > max_message_size):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append((index, message))
        chunk_bytes += size
    if chunk:
        yield chunk


def message_size(message: Outgoing) -> int:
    """Bytes as SQS counts them: the body plus each attribute's name, type and value."""
    extra = sum(
        len(name.encode()) + len(b"String") + len(value.encode())
        for name, value in message.attributes.items()
    )
    return len(message.body.encode()) + extra


def entry_problem(message: Outgoing, limit: int) -> str | None:
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


def batch_entry(
    index: int, message: Outgoing, *, fifo: bool = False
) -> SendMessageBatchRequestEntryTypeDef:
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": message.body}
    if fifo:
        # SQS FIFO wants a group on every message: one without is a group of its own
        entry["MessageGroupId"] = message.group or _digest(message.body)
        if message.dedup:
            entry["MessageDeduplicationId"] = message.dedup
    if message.attributes:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        }
        entry["MessageAttributes"] = attributes
    return entry


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def collect_failed(entries: Sequence[Mapping[str, Any]], failed: dict[int, str]) -> None:
    for bad in entries:
        reason = str(bad.get("Code", "Failed"))
        if bad.get("Message"):
            reason = f"{reason}: {bad['Message']}"
        failed[int(bad["Id"])] = reason
