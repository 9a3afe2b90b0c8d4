"""chromadb's errors turned into ours, and the retry of Chroma's one transient read error.

chromadb and httpx are imported inside :meth:`ChromaErrors.convert`, only once something has
failed, so importing this module stays cheap.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from constellation.damage import detail as damage_detail
from constellation.damage import is_damage
from constellation.errors import (
    ConstellationError,
    DamagedFile,
    DimensionMismatch,
    IndexNotFound,
    IndexUnreachable,
    VectorIndexError,
)

PROVISION_HINT = "run `constellation provision` first"


class ChromaErrors:
    """Turns whatever chromadb raises into our errors, with the next step to take."""

    def __init__(self, location: str, url: str | None) -> None:
        self.location = location
        self.url = url

    @contextmanager
    def translated(self, doing: str, index: str | None = None) -> Iterator[None]:
        """Re-raise a chromadb (or HTTP) failure while ``doing`` as a :class:`VectorIndexError`."""
        try:
            yield
        except ConstellationError:
            raise
        except Exception as exc:
            raise self.convert(exc, doing, index) from exc
        except BaseException as exc:
            # Chroma's Rust core panics on some damaged files: a PanicException, which is a
            # BaseException (KeyboardInterrupt and SystemExit pass through untouched).
            if not is_damage(exc):
                raise
            raise self.damaged(exc) from exc

    def damaged(self, exc: BaseException) -> DamagedFile | VectorIndexError:
        """The error for a damaged index: the file named, and how to get it back."""
        if self.url:
            return VectorIndexError(
                f"the Chroma server at {self.url} reports damaged data ({damage_detail(exc)})",
                "see the server's log; restore its data folder from a backup",
            )
        return DamagedFile(
            f"{self.location}/chroma.sqlite3",
            "the index file",
            damage_detail(exc),
            f"restore the folder {self.location} from a backup; for the new index, or move it "
            "aside and run `constellation provision` then `constellation requeue --all`, which "
            "rebuild it from the notes",
        )

    def convert(
        self, exc: Exception, doing: str, index: str | None
    ) -> VectorIndexError | DamagedFile:
        import httpx
        from chromadb import errors as chroma_errors

        detail = str(exc) or type(exc).__name__
        if is_damage(exc) or "no such table" in detail:  # an emptied chroma.sqlite3 too
            return self.damaged(exc)
        if self.url and (isinstance(exc, httpx.TransportError) or "Could not connect" in detail):
            return IndexUnreachable(
                f"Chroma server at {self.url} is unreachable ({detail})",
                "start it with `chroma run` or fix index.url in the plan",
            )
        if isinstance(exc, chroma_errors.ChromaAuthError | chroma_errors.AuthorizationError):
            return VectorIndexError(
                f"Chroma server at {self.url} refused the credentials while trying to {doing}",
                "check index.auth_token in the plan",
            )
        if isinstance(exc, chroma_errors.NotFoundError) and index is not None:
            return IndexNotFound(f"index {index} does not exist at {self.location}", PROVISION_HINT)
        if "dimension" in detail.lower():
            return DimensionMismatch(
                f"Chroma refused to {doing}: {detail}",
                "the plan's model dimension must match the index; re-provision or fix the plan",
            )
        if self.url:
            return VectorIndexError(
                f"Chroma failed to {doing} at {self.location}: {detail}",
                "check the Chroma server's log",
            )
        return self._embedded_failure(doing, detail)

    def _embedded_failure(self, doing: str, detail: str) -> VectorIndexError:
        """A failure on an embedded folder: most often another process writing it (embedded
        Chroma is not safe across processes: a reader sees segments the writer has not
        flushed, "Error finding id"), which is what the message then says."""
        from constellation.index.lock import holder

        writer = holder(Path(self.location))
        if writer is not None:
            return VectorIndexError(
                f"Chroma failed to {doing} at {self.location} ({detail}): another process "
                f"({writer}) is writing that embedded index, and embedded Chroma cannot be "
                "read reliably beside a writer",
                "stop that process, or run a Chroma server "
                f"(`chroma run --path {shlex.quote(self.location)}`) and set index.url in the "
                "plan",
            )
        return VectorIndexError(
            f"Chroma failed to {doing} at {self.location}: {detail}",
            f"check that {self.location} is a Chroma folder (or restore it from a backup)",
        )


#: a read on a freshly created collection can fail while Chroma has not yet written its HNSW
#: segment to disk (chroma-core/chroma#4212); it succeeds moments later
_TRANSIENT = "Nothing found on disk"


def read_retrying_transient(call: Callable[[], Any], attempts: int = 4) -> Any:
    """Run a read, retrying Chroma's known transient segment error with a short backoff."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if _TRANSIENT not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 3**attempt)
    raise AssertionError("unreachable")
