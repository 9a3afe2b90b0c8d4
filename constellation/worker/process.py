"""Processing one batch of messages: validate, preprocess, embed, upsert, then acknowledge.

Per-message outcomes, so one bad message never fails its batch:

* invalid body → dead-letter queue at once with its reason, then deleted from the queue;
* empty text → the note's record is removed (unless a newer one is stored), message deleted;
* older than the stored record (unless the job is forced), or an unchanged content hash →
  skipped without the model;
* embedded and stored → deleted only after the upsert succeeded;
* a model error on one text, an unreachable index, a timeout → left on the queue for
  redelivery after its visibility timeout; on its last allowed attempt (``max_retries``
  retries used) it goes to the dead-letter queue with the error as its reason.

An unchanged note costs no tokenizer, no model and no write: its normalized text's hash is
compared with the one stored (``records.SOURCE``) before anything else. The reads and writes of
all batches in flight go through one :class:`~.access.IndexAccess`: a batch reads once, before
the model; its records are handed over (:meth:`BatchProcessor.start`) to be stored with other
batches' in large calls, and its messages are acknowledged (:meth:`BatchProcessor.finish`)
only once they are stored. Within the process two batches holding versions of the same note can
never let the older overwrite the newer; across worker processes Chroma offers no conditional
write: a FIFO queue (``queue.fifo``) delivers one note's edits one at a time and in order, and
``recover`` finds any record older than the source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import wait

from constellation import records
from constellation.embedders.port import LOAD_NOTICE, Embedder, load_model
from constellation.errors import (
    ConstellationError,
    InputsRejected,
    ModelError,
    ProviderUnavailable,
    VectorIndexError,
)
from constellation.index.port import StoredRecord, Vector, VectorIndex, VectorRecord
from constellation.jobs import Rejection, parse_job
from constellation.preprocess import cut, normalize
from constellation.queues.port import Message, Queue
from constellation.worker.access import IndexAccess, Snapshot, newer
from constellation.worker.events import (
    INPUT_REFUSED,
    MODEL_ERROR,
    PROCESSED,
    SKIPPED,
    BatchTiming,
    FailureSink,
    Recorder,
)
from constellation.worker.in_flight import (
    Embedded,
    Refused,
    Started,
    VersionOutcome,
    add_newest,
    checked,
    index_error_type,
)
from constellation.worker.outcomes import Acknowledger, BatchOutcome, Failure, Pending


class BatchProcessor:
    """Turns a batch of received messages into stored records and acknowledgements."""

    def __init__(
        self,
        *,
        queue: Queue,
        dead_letter: Queue,
        index_for: Callable[[int], VectorIndex],
        embedder_for: Callable[[int], Embedder],
        models: Mapping[int, str],
        max_job_bytes: int,
        max_retries: int,
        recorder: Recorder,
        failures: FailureSink | None = None,
        clock: Callable[[], float] = time.time,
        max_write_records: int = 4000,
        max_write_delay: float = 10.0,
    ) -> None:
        self.index_for = index_for
        self.embedder_for = embedder_for
        self.models = dict(models)
        self.max_job_bytes = max_job_bytes
        self.recorder = recorder
        self.acks = Acknowledger(
            queue=queue,
            dead_letter=dead_letter,
            max_retries=max_retries,
            recorder=recorder,
            failures=failures,
            clock=clock,
        )
        #: reads of every batch in flight coalesced, writes gathered (one call per partition)
        self.access = IndexAccess(
            max_write_records=max_write_records, max_write_delay=max_write_delay
        )
        #: model versions loaded (the first batch of a version loads its model first)
        self._loaded: set[int] = set()

    def _load(self, version: int) -> float:
        """Load a version's model before the batch is timed; the seconds this batch waited
        for it (several batches in flight may wait for the same load). A model that cannot
        load is left to the batch, whose jobs then fail with the model's error."""
        try:
            took = load_model(self.embedder_for(version))
        except ConstellationError:
            return 0.0
        self._loaded.add(version)
        return took

    def process(self, messages: Sequence[Message]) -> BatchOutcome:
        """Handle one batch until its records are stored and its messages acknowledged; never
        raises for a per-message problem."""
        started = self.start(messages)
        wait(started.stored)
        return self.finish(started)

    def start(self, messages: Sequence[Message]) -> Started:
        """Validate, read, embed and hand the records over to be stored; returns at once after
        (``Started.stored`` tells when they are). Then call :meth:`finish`."""
        started = Started(messages, time.perf_counter())
        pending: dict[str, Pending] = {}
        for message in messages:
            parsed = parse_job(message.body, versions=self.models, max_bytes=self.max_job_bytes)
            if isinstance(parsed, Rejection):
                started.result.rejected += 1
                self.acks.reject(message, parsed)
                continue
            add_newest(
                pending,
                Pending(
                    message,
                    parsed,
                    records.record_id(parsed.user_id, parsed.note_id, parsed.version),
                ),
            )

        by_version: dict[int, list[Pending]] = {}
        for item in pending.values():
            by_version.setdefault(item.job.version, []).append(item)
        for version, items in by_version.items():
            started.versions.append(self._process_version(version, items))
        return started

    def finish(self, started: Started) -> BatchOutcome:
        """Acknowledge a started batch whose writes completed: delete what is stored or
        skipped, leave or dead-letter what failed, and record the batch."""
        result = started.result
        done: list[tuple[Pending, str]] = []
        failures: list[Failure] = []
        deferred: list[Pending] = []
        upserted = embedded = 0
        model_seconds = upsert_seconds = 0.0
        upsert_calls: tuple[int, ...] = ()
        now = time.perf_counter()
        loads = [(out.version, out.load_seconds) for out in started.versions]
        for out in started.versions:
            done += out.done
            failures += out.failures
            deferred += out.deferred
            model_seconds += out.model_seconds
            embedded += out.embedded
            if out.written is None:
                continue
            upsert_seconds += now - out.handed_at
            try:
                written, count, calls = out.written.result()
            except VectorIndexError as exc:
                kind = index_error_type(exc)
                failures += [Failure(item, kind, str(exc)) for item in out.writing]
                continue
            done += written
            upserted += count
            upsert_calls += calls
        self.acks.acknowledge(done, result)
        for failure in failures:
            self.acks.fail(failure, result)
        if deferred:
            self.acks.defer(deferred, result)
        result.timing = BatchTiming(
            received=len(started.messages),
            embedded=embedded,
            upserted=upserted,
            upsert_calls=upsert_calls,
            model_seconds=model_seconds,
            upsert_seconds=upsert_seconds,
            total_seconds=time.perf_counter() - started.at - sum(s for _, s in loads),
            loads=tuple((v, s) for v, s in loads if s > LOAD_NOTICE),
        )
        self.recorder.batch_done(result.timing)
        return result

    def backlog(self, busy: bool) -> None:
        """Whether the worker has a backlog: while it does, writes gather into larger calls."""
        self.access.backlog(busy)

    # one model version ------------------------------------------------------------------------
    def _process_version(self, version: int, items: list[Pending]) -> VersionOutcome:
        out = VersionOutcome(version=version)
        try:
            embedder = self.embedder_for(version)
            index = self.index_for(version)
            stored = self.access.read(index, [i.id for i in items])
        except ModelError as exc:
            out.fail(items, MODEL_ERROR, str(exc))
            return out
        except VectorIndexError as exc:
            out.fail(items, index_error_type(exc), str(exc))
            return out
        try:
            self._decide(version, items, embedder, index, stored, out)
        finally:
            self.access.release(stored)
        return out

    def _decide(
        self,
        version: int,
        items: list[Pending],
        embedder: Embedder,
        index: VectorIndex,
        stored: Snapshot,
        out: VersionOutcome,
    ) -> None:
        """Skip, embed or empty each job of one version, and hand the records over."""
        model = self.models[version]

        #: (record, job, outcome once stored)
        writes: list[tuple[VectorRecord, Pending, str]] = []
        empties: list[Pending] = []
        #: same text as stored, but a newer edit: the stored vector moves `created` forward
        forward: list[Pending] = []
        undecided: list[Pending] = []
        for item in items:
            # Normalize and hash first: an unchanged note is found here, with no tokenizer,
            # no model and no write (re-sends, restarted backfills, requeues).
            item.normalized = normalize(item.job.text)
            item.source = records.source_hash(item.normalized, model)
            existing = stored.get(item.id)
            if newer(existing, item.job):
                out.done.append((item, SKIPPED))
            elif not item.normalized:
                empties.append(item)
            elif existing is not None and existing.metadata.get(records.SOURCE) == item.source:
                item.hash = str(existing.metadata.get(records.HASH, ""))
                self._unchanged(item, existing, forward, out)
            else:
                undecided.append(item)

        to_embed: list[Pending] = []
        if undecided:
            if version not in self._loaded:
                out.load_seconds = self._load(version)  # its tokenizer is needed: load it first
            self._prepare(undecided, embedder, model, out)
            for item in undecided:
                if item.prepared is None:
                    continue  # failed with the model's error
                existing = stored.get(item.id)
                # a record from before source hashes: its content hash decides
                if existing is not None and existing.metadata.get(records.HASH) == item.hash:
                    self._unchanged(item, existing, forward, out)
                else:
                    to_embed.append(item)

        if forward:
            try:
                vectors = index.get([i.id for i in forward], include_vectors=True)
            except VectorIndexError as exc:
                out.fail(forward, index_error_type(exc), str(exc))
                forward = []
            for item in forward:
                stored_vector = vectors[item.id].vector if item.id in vectors else None
                if stored_vector is not None:
                    writes.append((self._record(item, stored_vector, model), item, SKIPPED))
                else:
                    to_embed.append(item)  # removed meanwhile: embed it again

        if to_embed:
            started = time.perf_counter()
            unprepared = [i for i in to_embed if i.prepared is None]
            if unprepared and not self._prepare(unprepared, embedder, model, out):
                to_embed = [i for i in to_embed if i.prepared is not None]
            try:
                embedded = self._embed(embedder, to_embed)
            except ProviderUnavailable:
                # Not these jobs' failure: they go back to the queue uncounted, and the
                # worker stops receiving until the provider answers a probe.
                out.deferred += to_embed
                embedded = []
            for item, vector, error in embedded:
                if isinstance(error, Refused):
                    out.failures.append(Failure(item, INPUT_REFUSED, error.reason, final=True))
                elif error is not None or vector is None:
                    out.failures.append(Failure(item, MODEL_ERROR, error or "no vector"))
                else:
                    writes.append((self._record(item, vector, model), item, PROCESSED))
            out.model_seconds = time.perf_counter() - started
            out.embedded = len(to_embed)

        if not writes and not empties:
            return
        out.writing = [item for _, item, _ in writes] + empties
        out.handed_at = time.perf_counter()
        out.written = self.access.write(index, stored, writes, empties)

    @staticmethod
    def _prepare(items: list[Pending], embedder: Embedder, model: str, out: VersionOutcome) -> bool:
        """Cut each job's text as the model will read it and hash what it will embed (the
        content hash); if the model cannot cut them, every one fails with its error."""
        try:
            texts = cut([i.normalized for i in items], embedder)
        except ModelError as exc:
            out.fail(items, MODEL_ERROR, str(exc))
            return False
        for item, prepared in zip(items, texts, strict=False):
            item.prepared = prepared
            item.hash = records.content_hash(prepared.text, model)
        return True

    @staticmethod
    def _unchanged(
        item: Pending, existing: StoredRecord, forward: list[Pending], out: VersionOutcome
    ) -> None:
        """An unchanged text: skipped, or (a newer edit of it) its vector kept, `created` moved
        forward so that a late delivery of an older edit can never win afterwards."""
        if records.created_of(existing.metadata) < item.job.created:
            forward.append(item)
        else:
            out.done.append((item, SKIPPED))

    def _embed(self, embedder: Embedder, items: list[Pending]) -> list[Embedded]:
        """One model call for the batch; if it fails, find the texts that fail on their own.

        A provider that refuses some texts says which (:class:`InputsRejected`): those get its
        reason, the rest their vectors. A provider that is unavailable fails no text: its
        :class:`ProviderUnavailable` is raised for the whole batch."""
        texts = [i.prepared.text if i.prepared else "" for i in items]
        try:
            matrix = embedder.embed(texts)
            return [
                checked(item, row, embedder.dimension)
                for item, row in zip(items, matrix, strict=True)
            ]
        except ProviderUnavailable:
            raise
        except InputsRejected as refused:
            return [
                (item, None, Refused(refused.rejected[row]))
                if row in refused.rejected
                else checked(item, refused.vectors[row], embedder.dimension)
                for row, item in enumerate(items)
            ]
        except Exception as batch_error:
            if len(items) == 1:
                return [(items[0], None, f"model failed: {batch_error}")]
        results: list[Embedded] = []
        for item, text in zip(items, texts, strict=True):
            try:
                results.append(checked(item, embedder.embed([text])[0], embedder.dimension))
            except Exception as exc:
                results.append((item, None, f"model failed: {exc}"))
        return results

    def _record(self, item: Pending, vector: Vector, model: str) -> VectorRecord:
        metadata = records.metadata(item.job, item.hash, model, item.source or None)
        return VectorRecord(item.id, vector, metadata)
