"""``constellation import git|folder|notion``: the app's import workers as operator verbs.

Each file or page becomes a note of the given user with a stable id; only what changed since
the last import of the same source is sent, and what is gone becomes a removal, all through the
app's own write path (see :mod:`phases.imports.sync`). The three verbs differ only in their
source; what every import takes is :class:`ImportOptions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Required, TypedDict, Unpack

from constellation.wiring.migration import Migration
from phases.imports.folder import FolderSource
from phases.imports.git import GitSource
from phases.imports.notion import NotionSource
from phases.imports.sync import ImportReport, Progress, synchronize

__all__ = ["ImportOptions", "ImportReport", "import_folder", "import_git", "import_notion"]


class ImportOptions(TypedDict, total=False):
    """What every import takes (see :func:`phases.imports.sync.synchronize`)."""

    #: whose notes they become
    user_id: Required[str]
    #: the source's stable name: imports of one name and user diff against each other
    name: str | None
    #: decide and report, change nothing
    dry_run: bool
    #: accept a source that lists nothing (removes every note it sent)
    allow_empty: bool
    on_progress: Progress | None


def import_git(
    m: Migration,
    repo: Path,
    *,
    globs: Sequence[str] = (),
    ref: str = "HEAD",
    **options: Unpack[ImportOptions],
) -> ImportReport:
    """Import a git repository's files as notes: only what changed since the last import."""
    return synchronize(m, GitSource(repo, globs=globs, ref=ref), **options)


def import_folder(
    m: Migration, folder: Path, *, globs: Sequence[str] = (), **options: Unpack[ImportOptions]
) -> ImportReport:
    """Import a folder's files as notes: only what changed since the last import."""
    return synchronize(m, FolderSource(folder, globs=globs), **options)


def import_notion(m: Migration, export: Path, **options: Unpack[ImportOptions]) -> ImportReport:
    """Import a Notion export's pages as notes: only what changed since the last import."""
    # A new export of the same workspace is another zip file: by default the source is the
    # user's Notion workspace, not the file, so that its pages update the same notes.
    options["name"] = options.get("name") or "notion"
    return synchronize(m, NotionSource(export, max_bytes=m.plan.consumer.max_job_bytes), **options)
