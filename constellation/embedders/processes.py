"""A model run in processes of its own, so that nothing the worker does can make it wait.

In one process every thread takes turns at Python's GIL: a torch model needs it between its
operations, and Chroma's embedded client holds it for the whole of an upsert, so the model
stalls while the index writes. :class:`ModelProcesses` keeps the same embedder port but runs
the model in ``processes`` child processes (``models.<v>.processes`` in the plan), each with
its share of the cores; the worker's process only sends texts and receives vectors (a pipe:
1.5 KB a vector). Calls waiting at one moment go to a child together, in one length-sorted call
(:mod:`constellation.coalesce`).

Children are started on first use (the first alone, so that an ONNX export happens once), by
``spawn`` (a fresh interpreter: no lock of the parent's is inherited), ignore SIGINT (the
worker finishes its batches on Ctrl-C and needs its model meanwhile), and exit when the parent
goes: their pipe closes, even after a SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from constellation.coalesce import Coalescer, split
from constellation.embedders.port import Embedder, Loading, no_notice
from constellation.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

#: builds the model inside a child; must be picklable (a module-level function, or a
#: functools.partial of one with picklable arguments)
Build = Callable[[], Embedder]


class ModelProcesses:
    """The :class:`~constellation.embedders.port.Embedder` port over a model in child processes."""

    def __init__(
        self,
        build: Build,
        *,
        model_id: str,
        dimension: int,
        processes: int = 2,
        max_call_texts: int = 256,
        loading: Loading | None = None,
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.processes = max(1, processes)
        #: around the children's first load (the CLI's spinner)
        self.loading: Loading = loading or no_notice
        self._build = build
        self._children: list[_Child] = []
        self._free: queue.Queue[_Child] = queue.Queue()
        self._lock = threading.Lock()
        self._calls: Coalescer[list[str], np.ndarray] = Coalescer(
            self._embed_together,
            name="model",
            limit=max_call_texts,
            size=len,
            threads=self.processes,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, computed in a child process."""
        self._start()
        return self._calls(list(texts))

    def truncate(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        """Each text cut to the model's tokens, by the child's tokenizer."""
        if not texts:
            return []
        self._start()
        result: list[tuple[str, bool]] = self._ask("truncate", list(texts))
        return result

    def close(self) -> None:
        """Stop the children (they also stop when this process ends)."""
        with self._lock:
            children, self._children = self._children, []
        for child in children:
            child.stop()

    def _start(self) -> None:
        with self._lock:
            if self._children:
                return
            with self.loading(self.model_id):
                first = _Child(self._build)
                first.wait_ready()  # alone: a first load may export the model to its folder
                others = [_Child(self._build) for _ in range(self.processes - 1)]
                for child in others:
                    child.wait_ready()
            self._children = [first, *others]
            for child in self._children:
                self._free.put(child)

    def _embed_together(self, calls: Sequence[list[str]]) -> list[np.ndarray]:
        texts = [text for call in calls for text in call]
        vectors = self._ask("embed", texts)
        return split(vectors, calls)

    def _ask(self, verb: str, texts: list[str]) -> Any:
        child = self._free.get()
        try:
            return child.ask(verb, texts)
        finally:
            self._free.put(child)


class _Child:
    """One model process and the pipe to it."""

    def __init__(self, build: Build) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, build), name="constellation-model", daemon=True
        )
        self._process.start()
        theirs.close()

    def wait_ready(self) -> None:
        self._reply()

    def ask(self, verb: str, texts: list[str]) -> Any:
        try:
            self._conn.send((verb, texts))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the model process is gone ({exc})") from exc
        return self._reply()

    def _reply(self) -> Any:
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise ModelError(
                f"the model process exited (code {self._process.exitcode})",
                "see the worker's log for the model's own error",
            ) from exc
        if kind == "error":
            raise ModelError(str(value))
        return value

    def stop(self) -> None:
        self._conn.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def _serve(conn: Connection, build: Build) -> None:
    """A child's loop: build the model, then embed or cut what the parent sends, until its
    pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        embedder = build()
        embedder.embed(["load the model"])
    except Exception as exc:
        conn.send(("error", f"cannot load the model: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            verb, texts = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            value: Any = embedder.embed(texts) if verb == "embed" else embedder.truncate(texts)
            conn.send(("ok", value))
        except Exception as exc:
            conn.send(("error", f"model {embedder.model_id} failed: {exc}"))
