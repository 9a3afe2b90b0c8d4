"""Embedding errors: dead letters and recorded failures grouped by reason, the model loading
check, and what preprocessing makes of the failing texts."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from constellation.jobs import Rejection, parse_job
from constellation.preprocess import normalize, prepare
from constellation.queues.port import Message
from constellation.wiring.migration import Migration
from phases.doctor.report import Area
from phases.operate.repair import ids, peek_dead_letters

#: dead letters read at most (they are released at once, nothing is consumed)
PEEK_LIMIT = 1000
#: failing texts whose preprocessing is shown, per reason
SHOWN = 3


def diagnose_errors(m: Migration, *, since: float) -> Area:
    """Dead letters by reason, the failure log since ``since``, and a model check."""
    area = Area("errors", "embedding errors")
    letters = peek_dead_letters(m, PEEK_LIMIT)
    failures = m.failures.since(since)
    by_message = {f.message_id: f for f in failures}
    groups: dict[str, list[Message]] = defaultdict(list)
    for message in letters:
        reason = message.attributes.get("reason")
        if reason is None:  # moved by the queue's redrive: the worker's log says why
            logged = by_message.get(message.id)
            reason = logged.error_type if logged else "redriven (receive limit)"
        groups[reason].append(message)
    failed = Counter(f.error_type for f in failures)
    area.figures = {
        "dead letters": len(letters),
        "dead letters by reason": {k: len(v) for k, v in sorted(groups.items())},
        "failed attempts since the deployment began": dict(sorted(failed.items())),
    }
    for reason, messages in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        shown = [_preprocessing(m, message) for message in messages[:SHOWN]]
        malformed = all(s.get("rejected") for s in shown)
        area.find(
            f"{len(messages):,} dead letter(s): {reason}",
            "constellation recover" if malformed else "constellation requeue --from-dlq",
            reason=reason,
            detail=messages[0].attributes.get("detail", ""),
            jobs=[
                f"{user}/{note}"
                for user, note, _ in (ids(message) for message in messages[:10])
                if (user, note) != ("?", "?")
            ],
            preprocessing=shown,
            what_to_do=(
                "these can never succeed: fix the producer that sends them, then purge"
                if malformed
                else "they can succeed now: move them back to the queue"
            ),
        )
    retried = {k: v for k, v in failed.items() if k not in groups}
    if retried:
        area.notes.append(
            "failed attempts that were retried (not dead letters): "
            + ", ".join(f"{k} {v}" for k, v in sorted(retried.items()))
        )
    _model_check(m, area)
    return area


def _preprocessing(m: Migration, message: Message) -> dict[str, Any]:
    """What the worker would make of a dead letter's body: why it is rejected, or its text
    through each preprocessing step."""
    parsed = parse_job(
        message.body, versions=m.plan.models, max_bytes=m.plan.consumer.max_job_bytes
    )
    if isinstance(parsed, Rejection):
        return {
            "rejected": f"{parsed.reason}: {parsed.detail}",
            "body": message.body[:120] + ("…" if len(message.body) > 120 else ""),
        }
    text = parsed.text
    normalized = normalize(text)
    (prepared,) = prepare([text], m.services.embedder(parsed.version))
    return {
        "job": f"{parsed.user_id}/{parsed.note_id} v{parsed.version}",
        "characters": len(text),
        "after normalization": len(normalized),
        "removed characters": len(text) - len(normalized),
        "truncated to the model's length": prepared.truncated,
        "empty after preprocessing": prepared.empty,
        "text": prepared.text[:120] + ("…" if len(prepared.text) > 120 else ""),
    }


def _model_check(m: Migration, area: Area) -> None:
    """Load each model version being written and embed one text: it loads, and its vector
    has the plan's dimension."""
    checks: dict[str, str] = {}
    for version in m.state.read().write_versions:
        model = m.plan.model(version)
        started = time.perf_counter()
        try:
            (vector,) = m.services.embedder(version).embed(["constellation doctor"])
        except Exception as exc:  # a model that cannot load is the finding itself
            area.find(
                f"model v{version} ({model.name}) cannot be loaded or embed: "
                f"{type(exc).__name__}: {exc}",
                "constellation verify",
                version=version,
                model=model.name,
            )
            checks[f"v{version}"] = "failed"
            continue
        seconds = time.perf_counter() - started
        if len(vector) != model.dimensions:
            area.find(
                f"model v{version} gives {len(vector)} dimensions; the plan says "
                f"{model.dimensions}",
                "constellation verify",
                version=version,
                model=model.name,
            )
        checks[f"v{version}"] = f"{model.name}: loaded, {len(vector)} dims, {seconds:.2f}s"
    area.figures["model check"] = checks
