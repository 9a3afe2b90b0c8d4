"""One archive step, used by phase 4 (the old index) and by a full rollback that deletes the
service (the new index): every record (id, vector, metadata) as gzipped JSON Lines, written
beside the target and renamed at the end, then read back and counted.

A run killed while writing leaves ``<name>.partial``; the next run removes the partial files
of interrupted runs (``stale``) before it writes, and says so. An archive that cannot be read
back (truncated, overwritten) is :class:`DamagedFile`; the step writes it again from the index.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from constellation.errors import DamagedFile, StateError
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
    #: glob patterns (in the archive's folder) of partial files that interrupted runs of this
    #: step left, removed before it writes (its own partial file is always among them)
    stale: tuple[str, ...] = ()
    written: int = 0
    removed: list[Path] = field(default_factory=list)

    @property
    def resource(self) -> str:
        return f"archive {self.path.name}"

    def describe(self) -> str:
        return f"archive {self.what} to {self.path} and verify it"

    def check(self) -> Check:
        if self.path.exists():
            try:
                if archive_count(self.path) == self.count():
                    return Check("unchanged", f"already archived ({self.count():,} records)")
            except DamagedFile as damaged:
                return Check("create", f"{damaged.message}: it is written again")
        return Check("create", self.describe())

    def stale_partials(self) -> list[Path]:
        """Partial files that interrupted runs left (this run's own one included)."""
        patterns = {partial_path(self.path).name, *self.stale}
        return sorted({p for pattern in patterns for p in self.path.parent.glob(pattern)})

    def apply(self) -> str:
        expected = self.count()
        progress = self.on_progress

        def advance(n: int) -> None:
            if progress:
                progress("archive", expected, n)

        for partial in self.stale_partials():
            partial.unlink(missing_ok=True)
            self.removed.append(partial)
        self.written = write_archive(self.records(), self.path, advance)
        found = archive_count(self.path)
        if found != expected:
            raise StateError(
                f"the archive {self.path} holds {found:,} records but {self.what} {expected:,}",
                "nothing was deleted; run the command again",
            )
        cleaned = (
            f"; removed {len(self.removed)} partial file(s) of an interrupted run"
            if self.removed
            else ""
        )
        return f"{found:,} records, verified{cleaned}"

    def undo(self) -> None:
        self.path.unlink(missing_ok=True)


def write_archive(
    records: Iterable[StoredRecord], path: Path, advance: Callable[[int], None] | None = None
) -> int:
    """Records (id, vector, metadata) as gzipped JSON Lines; returns how many were written.

    Written beside the target and renamed at the end: only a complete archive has its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
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


def partial_path(path: Path) -> Path:
    """Where an archive is written until it is complete."""
    return path.with_name(path.name + ".partial")


def archive_count(path: Path) -> int:
    """Records in an archive file (read back, to verify it); :class:`DamagedFile` when it
    cannot be read back whole."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            return sum(1 for _ in lines)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DamagedFile(
            path,
            "the archive",
            f"{type(exc).__name__}: {exc}",
            "move it aside and run the command again, which writes it again from the index; "
            "if the index is gone, restore the archive from a backup",
        ) from exc
