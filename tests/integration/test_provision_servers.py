"""`provision` with plans/staging.yaml against a real moto server and `chroma run`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from tests.support.cli import REPO, Invoke
from tests.support.servers import ManagedServer

pytestmark = [pytest.mark.servers, pytest.mark.usefixtures("shared_model")]


def test_staging_plan_provisions_sqs_and_chroma_server(
    invoke: Invoke,
    moto: ManagedServer,
    chroma_server: ManagedServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("SQS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("CHROMA_URL", chroma_server.url)
    monkeypatch.setenv("CONSTELLATION_DATA", str(tmp_path / "data"))
    # Unique names on the shared servers, through an environment of the real staging plan.
    plan = tmp_path / "staging.yaml"
    plan.write_text(
        (REPO / "plans/staging.yaml").read_text()
        + f"\nenvironments:\n  test:\n    queue: {{name: embed-queue-{suffix}, "
        f"dead_letter: embed-dead-letter-{suffix}}}\n    index: {{name: dome-notes-{suffix}}}\n"
    )
    first = invoke("--plan", str(plan), "--env", "test", "provision", "--json")
    assert first.exit_code == 0, first.output
    assert [r["outcome"] for r in json.loads(first.stdout)["results"]] == [
        "checked",
        "created",  # the migration state's record, first
        "created",
        "created",
        "created",
    ]
    second = invoke("--plan", str(plan), "--env", "test", "provision", "--json")
    assert [r["outcome"] for r in json.loads(second.stdout)["results"]] == [
        "checked",
        "unchanged",
        "unchanged",
        "unchanged",
        "unchanged",
    ]

    # A plain boto3 client, knowing nothing of Constellation, reads the redrive policy.
    sqs = boto3.client("sqs", endpoint_url=moto.url, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=f"embed-queue-{suffix}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(f":embed-dead-letter-{suffix}")
    assert int(policy["maxReceiveCount"]) == 4  # one try plus max_retries (3) retries

    described = json.loads(
        invoke("--plan", str(plan), "--env", "test", "describe", "--json").stdout
    )
    (index,) = described["indexes"]
    assert index["info"]["location"] == chroma_server.url
    assert index["info"]["dimension"] == 384
