"""One archive step, used by phase 4 (the old index) and by a full rollback that deletes the
service (the new index): every record (id, vector, metadata) as gzipped JSON Lines, written
beside the target and renamed at the end, then read back and counted."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from constellation.errors import StateError
from constellation.index.port import StoredRecord
from phases.steps import Check


@dataclass
class Archive:
    """Write every record of an index to ``path`` and verify the count against the index.

    ``what`` names the index in messages ("the legacy index", "the new index"). An archive
    already at ``path`` with the index's count is reported ``unchanged`` (a re-run after a
    crash); the file only gets its name once it is complete.
    """

    what: str
    records: Callable[[], Iterable[StoredRecord]]
    count: Callable[[], int]
    path: Path
    on_progress: Callable[[str, int | None, int], None] | None = None
    written: int = 0

    @property
    def resource(self) -> str:
        return f"archive {self.path.name}"

    def describe(self) -> str:
        return f"archive {self.what} to {self.path} and verify it"

    def check(self) -> Check:
        if self.path.exists() and archive_count(self.path) == self.count():
            return Check("unchanged", f"already archived ({self.count():,} records)")
        return Check("create", self.describe())

    def apply(self) -> str:
        expected = self.count()
        progress = self.on_progress

        def advance(n: int) -> None:
            if progress:
                progress("archive", expected, n)

        self.written = write_archive(self.records(), self.path, advance)
        found = archive_count(self.path)
        if found != expected:
            raise StateError(
                f"the archive {self.path} holds {found:,} records but {self.what} {expected:,}",
                "nothing was deleted; run the command again",
            )
        return f"{found:,} records, verified"

    def undo(self) -> None:
        self.path.unlink(missing_ok=True)


def write_archive(
    records: Iterable[StoredRecord], path: Path, advance: Callable[[int], None] | None = None
) -> int:
    """Records (id, vector, metadata) as gzipped JSON Lines; returns how many were written.

    Written beside the target and renamed at the end: only a complete archive has its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    written = 0
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        for record in records:
            line = {
                "id": record.id,
                "vector": list(record.vector or []),
                "metadata": dict(record.metadata),
            }
            out.write(json.dumps(line) + "\n")
            written += 1
            if advance and written % 100 == 0:
                advance(100)
    partial.replace(path)
    return written


def archive_count(path: Path) -> int:
    """Records in an archive file (read back, to verify it)."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return sum(1 for _ in lines)
