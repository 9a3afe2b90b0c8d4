"""The demo's app at work during the migration: its machines' searches through the router,
each waiting for its shadow, and a few edits (see :mod:`phases.demo.run`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from constellation.migration.router import Router
from constellation.migration.source import Note, NotesSource, insert_notes

#: the demo's app machines: each one's router searches, then waits for its shadow (every
#: search embeds on the one model thread, so more machines would add waiting, not searches)
APP_MACHINES = 2
#: the demo waits this long for a shadow (a slow one is still a comparison, judged by the gate)
DEMO_SHADOW_TIMEOUT = 30.0


class AppTraffic:
    """The app's side during the migration: searches (and a few edits) through the router, from
    :data:`APP_MACHINES` machines. Each waits for its own shadow search before its next one:
    every search becomes a comparison, and a slow machine is not swamped by shadows it drops.
    The app searches while a step dwells (:meth:`search`) and rests while the operator's checks
    run (:meth:`rest`), which would otherwise share the machine's model with it."""

    def __init__(
        self,
        routers: list[Router],
        source: NotesSource,
        phrases: Iterator[tuple[str, str]],
        edits: list[Note],
    ) -> None:
        self.routers = routers
        self.source = source
        self.phrases = phrases
        self.pending_edits = edits
        self.searches = 0
        self.errors = 0
        self.edits = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._searching = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(r,), name=f"app-{i}", daemon=True)
            for i, r in enumerate(routers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def search(self) -> None:
        """Search (a step dwells and collects comparisons)."""
        self._searching.set()

    def rest(self) -> None:
        """Stop searching until :meth:`search` (a check runs); searches under way finish."""
        self._searching.clear()

    def _run(self, router: Router) -> None:
        while not self._stop.is_set():
            if not self._searching.wait(timeout=0.2):
                continue
            with self._lock:
                user, text = next(self.phrases)
            try:
                router.search(text, user, 10)
                ok = True
            except Exception:
                ok = False
            router.wait_for_shadows(timeout=DEMO_SHADOW_TIMEOUT)
            with self._lock:
                self.searches += ok
                self.errors += not ok
                edit = (
                    self.pending_edits.pop()
                    if self.pending_edits and ok and self.searches % 10 == 0
                    else None
                )
            if edit is not None:
                try:
                    insert_notes(self.source, [edit])  # the app's own table first
                    router.write(edit)
                    with self._lock:
                        self.edits += 1
                except Exception:
                    with self._lock:
                        self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        self._searching.set()
        for thread in self._threads:
            thread.join(timeout=60)
        for router in self.routers:
            router.close()
