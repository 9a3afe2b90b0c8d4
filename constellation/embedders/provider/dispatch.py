"""The worker's texts, gathered into full requests, sent a few at a time.

The worker has several batches in flight, each asking for its texts' vectors. Requests cost a
provider's requests-per-minute limit whatever they hold, so a request should hold as many texts
as the plan allows (``texts_per_request``): the :class:`Dispatcher` queues every caller's texts,
and each of its ``requests_in_flight`` threads waits for its turn under the limits first and
takes the texts pending at that moment second, so what piled up while it waited goes out
together. A call returns once all its texts have their vectors (or a reason they have none).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from constellation.embedders.provider.session import PROBE_TEXT, ProviderSession
from constellation.embedders.provider.wire import InputRefused
from constellation.errors import InputsRejected, ProviderUnavailable

if TYPE_CHECKING:
    import numpy as np


def embed_texts(
    session: ProviderSession,
    texts: Sequence[str],
    deadline: float,
    *,
    trip_on_deadline: bool = True,
    prepaid: bool = False,
    whole: bool = True,
) -> tuple[np.ndarray, dict[int, str]]:
    """The vectors of ``texts`` (NaN rows for refused ones) and each refused text's reason.

    A request refused for its input is split in halves until the refused texts are alone
    (``whole``: this call is not such a half). When every text is refused, a probe text is sent too: refused as well, the fault is the
    request itself (a wrong model name, say), never the texts, and nothing is rejected:
    :class:`ProviderUnavailable` is raised and the breaker opens.
    """
    import numpy as np

    answer = session.request(texts, deadline, trip_on_deadline=trip_on_deadline, prepaid=prepaid)
    if not isinstance(answer, InputRefused):
        return answer, {}
    vectors = np.full((len(texts), session.dimensions), np.nan, dtype=np.float32)
    refused: dict[int, str] = {}
    if len(texts) > 1:
        middle = len(texts) // 2
        for start, part in ((0, texts[:middle]), (middle, texts[middle:])):
            rows, reasons = embed_texts(
                session, part, deadline, trip_on_deadline=trip_on_deadline, whole=False
            )
            vectors[start : start + len(part)] = rows
            refused.update({start + i: reason for i, reason in reasons.items()})
    else:
        refused[0] = answer.reason
    if whole and len(refused) == len(texts) and list(texts) != [PROBE_TEXT]:
        _check_request(session, deadline, trip_on_deadline)
    return vectors, refused


def _check_request(session: ProviderSession, deadline: float, trip_on_deadline: bool) -> None:
    """Raise when the provider refuses a probe text as well (see :func:`embed_texts`)."""
    answer = session.request([PROBE_TEXT], deadline, trip_on_deadline=trip_on_deadline)
    if isinstance(answer, InputRefused):
        message = f"{session.wire.where} refuses every request: {answer.reason}"
        session.breaker.failed(message, "refused", trip=True)
        raise ProviderUnavailable(
            message, f"check {session.plan_field}.provider (url, model) in the plan", kind="refused"
        )


@dataclass
class _Call:
    texts: Sequence[str]
    deadline: float
    vectors: np.ndarray
    left: int
    refused: dict[int, str] = field(default_factory=dict)
    error: ProviderUnavailable | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, count: int) -> None:
        self.left -= count
        if self.left <= 0:
            self.done.set()

    def fail(self, error: ProviderUnavailable) -> None:
        if self.error is None:
            self.error = error
        self.done.set()


class Dispatcher:
    """Thread-safe; threads start on demand and end when idle, so nothing needs closing."""

    def __init__(self, session: ProviderSession, *, idle: float = 2.0) -> None:
        self.session = session
        self.per_request = session.config.texts_per_request
        self.threads = session.config.requests_in_flight
        self.idle = idle
        self._pending: deque[tuple[_Call, int]] = deque()
        self._ready = threading.Condition()
        self._running = 0
        self._waiting = 0

    def embed(self, texts: Sequence[str], deadline: float) -> np.ndarray:
        """Every text's vector; raises :class:`ProviderUnavailable` or :class:`InputsRejected`."""
        import numpy as np

        call = _Call(
            texts,
            deadline,
            np.empty((len(texts), self.session.dimensions), dtype=np.float32),
            len(texts),
        )
        if not texts:
            return call.vectors
        with self._ready:
            self._pending.extend((call, i) for i in range(len(texts)))
            if self._waiting == 0 and self._running < self.threads:
                self._running += 1
                threading.Thread(target=self._run, name="provider", daemon=True).start()
            self._ready.notify()
        call.done.wait()
        if call.error is not None:
            raise call.error
        if call.refused:
            raise InputsRejected(dict(sorted(call.refused.items())), call.vectors)
        return call.vectors

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._pending:
                    self._waiting += 1
                    self._ready.wait(self.idle)
                    self._waiting -= 1
                if not self._pending:
                    self._running -= 1
                    return
                deadline = self._pending[0][0].deadline
            # the request's turn first, its texts second (see the module doc); past the
            # deadline, the request's own attempt reports it
            prepaid = self.session.limiter.take(requests=1, tokens=0, deadline=deadline)
            group = self._take()
            if group:
                self._send(group, prepaid)
            elif prepaid:
                self.session.limiter.refund(requests=1)

    def _take(self) -> list[tuple[_Call, int]]:
        with self._ready:
            group: list[tuple[_Call, int]] = []
            while self._pending and len(group) < self.per_request:
                call, row = self._pending.popleft()
                if call.error is None:  # a call that failed already needs no more vectors
                    group.append((call, row))
            if self._pending:
                self._ready.notify()
            return group

    def _send(self, group: list[tuple[_Call, int]], prepaid: bool) -> None:
        texts = [call.texts[row] for call, row in group]
        deadline = min(call.deadline for call, _ in group)
        try:
            vectors, refused = embed_texts(self.session, texts, deadline, prepaid=prepaid)
        except ProviderUnavailable as exc:
            for call in {id(c): c for c, _ in group}.values():
                call.fail(exc)
            return
        except Exception as exc:  # a bug must fail its calls, never hang them
            error = ProviderUnavailable(f"the provider client failed: {exc}", kind="unreachable")
            for call in {id(c): c for c, _ in group}.values():
                call.fail(error)
            return
        counts: dict[int, tuple[_Call, int]] = {}
        with self._ready:  # parts of one call may finish on several threads at once
            for position, (call, row) in enumerate(group):
                call.vectors[row] = vectors[position]
                if position in refused:
                    call.refused[row] = refused[position]
                previous = counts.get(id(call), (call, 0))[1]
                counts[id(call)] = (call, previous + 1)
            for call, count in counts.values():
                call.finish(count)
