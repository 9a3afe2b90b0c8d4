"""What starts, pauses and stops a worker from outside: the consumer switch and signals, and
the record of which messages it holds (for the visibility heartbeat)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from constellation.errors import ConstellationError
from constellation.queues.port import Message, Queue

log = logging.getLogger("constellation.worker")


class ConsumerSwitch(Protocol):
    """The ``consumer_enabled`` flag of the migration state (read before each receive)."""

    def consumer_enabled(self) -> bool: ...


class AlwaysEnabled:
    def consumer_enabled(self) -> bool:
        return True


class HeldMessages:
    """Messages this worker holds, and until when each is hidden from other consumers."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, messages: list[Message], until: float) -> None:
        with self._lock:
            for m in messages:
                self._until[m.receipt] = until

    def remove(self, messages: list[Message]) -> None:
        with self._lock:
            for m in messages:
                self._until.pop(m.receipt, None)

    def due(self, before: float) -> list[str]:
        with self._lock:
            return [r for r, until in self._until.items() if until <= before]

    def extended(self, receipts: list[str], until: float) -> None:
        with self._lock:
            for r in receipts:
                if r in self._until:
                    self._until[r] = until

    def extend(self, queue: Queue, now: float, vt: float) -> None:
        """Hide again for ``vt`` seconds the messages whose invisibility ends within half of
        it (the worker's heartbeat); a queue error is logged and tried at the next beat."""
        due = self.due(now + vt / 2)
        if not due:
            return
        try:
            result = queue.change_visibility_batch(due, vt)
            self.extended(result.succeeded, now + vt)
        except ConstellationError as exc:
            log.warning("could not extend visibility: %s", exc, extra={"event": "extend_error"})

    def __len__(self) -> int:
        return len(self._until)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``stop`` (a worker's graceful stop) while inside this block (main
    thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        log.info(
            "received %s: finishing in-flight batches",
            signal.Signals(signum).name,
            extra={"event": "signal"},
        )
        stop()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
