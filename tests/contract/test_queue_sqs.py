"""The queue contract on the SQS adapter, against a real moto server over HTTP, and what only
the SQS adapter does: redrive policies plain boto3 can read, SQS's own limits, credentials and
endpoint errors.

The moto server is shared by the session (fixture ``moto``), so every test uses its own
queue-name prefix.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from constellation.errors import QueueError, QueueNotFound
from constellation.queues.port import Broker, Outgoing, QueueSpec, Redrive
from constellation.queues.sqs import SqsBroker
from tests.contract.queue_contract import PAUSE, QueueContract
from tests.contract.queue_fifo_contract import FifoQueueContract
from tests.support.servers import ManagedServer, free_port


@pytest.mark.servers
class TestSqsQueue(QueueContract, FifoQueueContract):
    stale_receipts_refused = False
    release_uncounted = False

    @pytest.fixture
    def broker(self, moto: ManagedServer) -> Iterator[Broker]:
        broker = SqsBroker(endpoint_url=moto.url, region="us-east-1")
        yield broker
        broker.close()

    def receive_concurrently(self, broker: Broker, name: str) -> list[list[str]]:
        queue = broker.open(name)
        barrier = threading.Barrier(2)
        taken: list[list[str]] = [[], []]

        def receiver(ids: list[str]) -> None:
            barrier.wait(30)
            while batch := queue.receive(max_messages=1, visibility_timeout=30):
                ids.extend(message.id for message in batch)
                time.sleep(PAUSE)

        threads = [threading.Thread(target=receiver, args=(ids,)) for ids in taken]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return taken

    def test_plain_boto3_reads_the_redrive_policy(
        self, broker: Broker, prefix: str, moto: ManagedServer
    ) -> None:
        import boto3

        broker.create(QueueSpec(f"{prefix}-dlq", 30))
        info = broker.create(QueueSpec(f"{prefix}-embed", 30, Redrive(f"{prefix}-dlq", 4)))
        client = boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1")
        dead_url = client.get_queue_url(QueueName=f"{prefix}-dlq")["QueueUrl"]
        dead_arn = client.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])
        attributes = client.get_queue_attributes(
            QueueUrl=info.url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
        )["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == dead_arn["Attributes"]["QueueArn"]
        assert int(policy["maxReceiveCount"]) == 4
        assert attributes["VisibilityTimeout"] == "30"
        client.close()

    def test_redrive_to_a_missing_dead_letter_queue(self, broker: Broker, prefix: str) -> None:
        with pytest.raises(QueueNotFound, match="dead-letter"):
            broker.create(QueueSpec(f"{prefix}-embed", 30, Redrive(f"{prefix}-dlq", 3)))

    def test_long_waits_are_capped(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        queue.send("job")
        # SQS refuses WaitTimeSeconds over 20 and fractions: the adapter caps and rounds.
        assert len(queue.receive(max_messages=1, wait_seconds=25.5)) == 1

    def test_sqs_refusals_are_checked_before_sending(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        many: Mapping[str, str] = {f"a{i}": "v" for i in range(11)}
        sent = queue.send_batch(
            [Outgoing(""), Outgoing("x", {"empty": ""}), Outgoing("x", many), Outgoing("\x00")]
        )
        assert set(sent.failed) == {0, 1, 2, 3}

    def test_missing_queue_hint_names_the_environment(
        self, moto: ManagedServer, prefix: str
    ) -> None:
        broker = SqsBroker(endpoint_url=moto.url, env="staging")
        with pytest.raises(QueueNotFound) as raised:
            broker.open(f"{prefix}-embed")
        assert str(raised.value) == (
            f"queue {prefix}-embed does not exist at {moto.url}; "
            "run `constellation provision --env staging` first"
        )
        broker.close()

    def test_deleted_queue_says_to_provision(self, broker: Broker, prefix: str) -> None:
        queue = self.make(broker, f"{prefix}-embed")
        broker.delete_queue(queue.name)
        with pytest.raises(QueueNotFound, match="provision"):
            queue.send("job")

    def test_missing_credentials_say_what_to_set(
        self, moto: ManagedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        broker = SqsBroker(endpoint_url=moto.url, region="us-east-1")
        with pytest.raises(QueueError, match="AWS_ACCESS_KEY_ID"):
            broker.open("anything")
        broker.close()

    def test_unreachable_endpoint_is_named(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        broker = SqsBroker(endpoint_url=url, region="us-east-1")
        with pytest.raises(QueueError, match=url):
            broker.inspect("anything")
        broker.close()


@pytest.mark.servers
def test_sqs_fifo_queues_deduplicate_by_content(moto: ManagedServer) -> None:
    broker = SqsBroker(endpoint_url=moto.url, region="us-east-1")
    name = f"t{time.time_ns()}-embed.fifo"
    broker.create(QueueSpec(name, 30, fifo=True))
    queue = broker.open(name)
    body = '{"userId": "u", "noteId": "n"}'
    queue.send_batch([Outgoing(body, group="g")])
    queue.send_batch([Outgoing(body, group="g")])  # the same job sent again: dropped
    queue.send_batch([Outgoing(body, group="g", dedup="a-fresh-id")])  # a deliberate resend
    taken = []
    while batch := queue.receive(max_messages=10):
        taken += batch
        queue.delete_batch([m.receipt for m in batch])
    assert [m.body for m in taken] == [body, body]
    broker.close()
