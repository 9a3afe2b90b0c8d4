"""Faults: the bodies producers send. Every malformed body goes to the dead-letter queue with
its reason while good jobs around it are stored, on the embedded default (SQLite queue, embedded
Chroma) and on SQS (a moto server) with a Chroma server; and the issue's "done when": a plain
boto3 producer, knowing nothing of Constellation, sends to the staging queue and the worker
command stores its jobs and dead-letters the rest.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from constellation import records
from constellation.embedders.sentence_transformers import SentenceTransformerEmbedder
from constellation.services import Services
from constellation.worker import build_worker
from tests.integration.conftest import (
    Backend,
    ModelServices,
    job_body,
    provision_plan,
    receive_all,
    send,
    unique_names,
)
from tests.integration.faults_support import StartWorker, note_text, record_ids
from tests.support.cli import REPO
from tests.support.model import MODEL

pytestmark = [pytest.mark.servers, pytest.mark.model]


# d. malformed bodies ---------------------------------------------------------------------------
def malformed() -> dict[str, str]:
    """One body per rejection reason of the job contract (see constellation/jobs.py)."""
    good = {"userId": "finn", "noteId": "x", "text": "hello", "created": 1, "version": 1}

    def body(**changes: Any) -> str:
        return json.dumps({**good, **changes})

    missing = dict(good)
    del missing["text"]
    return {
        "this is not JSON {": "not_json",
        '["userId", "finn"]': "not_an_object",
        json.dumps(missing): "missing_field",
        body(noteId="wrong-type-1", created="2024-05-01"): "wrong_type",
        body(noteId="wrong-type-2", version=True): "wrong_type",
        body(noteId="wrong-type-3", text=None): "wrong_type",
        body(userId="   "): "empty_id",
        body(noteId=""): "empty_id",
        body(noteId="future", version=7): "unknown_version",
        body(noteId="huge", text="word " * 1000): "too_large",
    }


def test_every_malformed_body_is_dead_lettered_with_its_reason_and_good_jobs_are_stored(
    backend: Backend, embedder: SentenceTransformerEmbedder
) -> None:
    plan = provision_plan(backend.plan({"consumer": {"max_job_bytes": 2048, "max_batch_size": 4}}))
    bad = malformed()
    good = [job_body("finn", f"good-{i}", note_text(i)) for i in range(6)]
    bodies: list[str] = []
    for i, body in enumerate(bad):  # good jobs between the bad ones, in the same batches
        bodies += [body, *good[i : i + 1]]
    assert sorted(bodies) == sorted([*bad, *good])

    with ModelServices(plan, embedder) as services:
        send(services.queue, bodies)
        summary = build_worker(plan, services).run(drain=True)
        dead = receive_all(services.dead_letter)
        stored = services.index().get(record_ids(good))

    assert summary.reason == "drained"
    assert sorted(stored) == sorted(record_ids(good))
    assert {m.body: m.attributes["reason"] for m in dead} == bad
    assert len(dead) == len(bad)  # each once
    assert {m.attributes["receiveCount"] for m in dead} == {"1"}  # at once, never retried
    assert summary.stats["dead_lettered"] == dict(Counter(bad.values()))
    assert summary.stats["processed"] == len(good)


# f. the "done when": a producer that knows nothing of Constellation --------------------
def test_plain_boto3_producer_to_staging_queue_is_stored_by_the_worker_command(
    servers_env: dict[str, str],
    tmp_path: Path,
    worker_process: StartWorker,
    embedder: SentenceTransformerEmbedder,
) -> None:
    names = unique_names()
    queue_name, dead_name = names["queue"]["name"], names["queue"]["dead_letter"]
    # plans/staging.yaml itself, with only the names changed (the servers are shared).
    plan_path = tmp_path / "staging.yaml"
    plan_path.write_text(
        (REPO / "plans/staging.yaml")
        .read_text()
        .replace("embed-queue-staging", queue_name)
        .replace("embed-dead-letter-staging", dead_name)
        .replace("dome-notes-staging", names["index"]["name"])
    )
    plan = provision_plan(plan_path)
    assert (plan.queue.name, plan.queue.visibility_timeout) == (queue_name, 60)

    # DESIGN.md's job message, sent the way the app's producers send it.
    jobs: list[dict[str, Any]] = [
        {
            "userId": "u-17",
            "noteId": "n-1",
            "text": "Dentist on Tuesday at 10am",
            "created": 1715000000000,
            "version": 1,
        },
        {
            "userId": "u-17",
            "noteId": "n-2",
            "text": "Pick up the dry cleaning",
            "created": 1715000000500,
            "version": 1,
        },
        {
            "userId": "u-42",
            "noteId": "n-1",
            "text": "Draft the Q3 roadmap",
            "created": 1715000001000,
            "version": 1,
            "tags": ["work"],
        },
    ]
    malformed = {
        "not json at all": "not_json",
        json.dumps(
            {"userId": "u-17", "noteId": "n-3", "created": 1, "version": 1}
        ): "missing_field",
        json.dumps(
            {"userId": "u-17", "noteId": "n-4", "text": "x", "created": "now", "version": 1}
        ): "wrong_type",
        json.dumps(
            {"userId": "u-17", "noteId": "n-5", "text": "x", "created": 1, "version": 99}
        ): "unknown_version",
    }
    sqs = boto3.client("sqs", endpoint_url=servers_env["SQS_ENDPOINT_URL"], region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    for body in [*(json.dumps(job) for job in jobs), *malformed]:
        sqs.send_message(QueueUrl=url, MessageBody=body)

    worker = worker_process(plan_path, "--drain", "--json")
    assert worker.wait(120) == 0, worker.stderr
    summary = worker.summary()
    assert summary["reason"] == "drained"
    assert summary["stats"]["processed"] == len(jobs)

    with Services(plan, write=False) as services:
        index = services.index()
        ids = [records.record_id(j["userId"], j["noteId"], 1) for j in jobs]
        stored = index.get(ids, include_vectors=True)
        assert index.count() == len(jobs)
    for job, record_id in zip(jobs, ids, strict=True):
        record = stored[record_id]
        assert record.metadata == {
            "userId": job["userId"],
            "noteId": job["noteId"],
            "version": 1,
            "created": job["created"],
            "contentHash": records.content_hash(job["text"], MODEL),
            "model": MODEL,
            "sourceHash": records.source_hash(job["text"], MODEL),
        }
        expected = embedder.model.encode([job["text"]], normalize_embeddings=True)[0]
        assert record.vector is not None
        assert float(np.dot(record.vector, expected)) >= 0.999

    # The dead-letter queue, read with plain boto3: every malformed message, with its reason.
    dead_url = sqs.get_queue_url(QueueName=dead_name)["QueueUrl"]
    reasons: dict[str, str] = {}
    while True:
        got = sqs.receive_message(
            QueueUrl=dead_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            reasons[message["Body"]] = message["MessageAttributes"]["reason"]["StringValue"]
    assert reasons == malformed
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
