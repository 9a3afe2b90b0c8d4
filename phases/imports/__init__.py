"""``constellation import git|folder|notion``: the app's import workers as operator verbs.

Each file or page becomes a note of the given user with a stable id; only what changed since
the last import of the same source is sent, and what is gone becomes a removal, all through the
app's own write path (see :mod:`phases.imports.sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from constellation.wiring.migration import Migration
from phases.imports.folder import FolderSource
from phases.imports.git import GitSource
from phases.imports.notion import NotionSource
from phases.imports.sync import ImportReport, Progress, synchronize

__all__ = ["ImportReport", "import_folder", "import_git", "import_notion"]


def import_git(
    m: Migration,
    repo: Path,
    *,
    user_id: str,
    globs: Sequence[str] = (),
    ref: str = "HEAD",
    name: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import a git repository's files as notes: only what changed since the last import."""
    source = GitSource(repo, globs=globs, ref=ref)
    return synchronize(
        m,
        source,
        user_id=user_id,
        name=name,
        dry_run=dry_run,
        allow_empty=allow_empty,
        on_progress=on_progress,
    )


def import_folder(
    m: Migration,
    folder: Path,
    *,
    user_id: str,
    globs: Sequence[str] = (),
    name: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import a folder's files as notes: only what changed since the last import."""
    return synchronize(
        m,
        FolderSource(folder, globs=globs),
        user_id=user_id,
        name=name,
        dry_run=dry_run,
        allow_empty=allow_empty,
        on_progress=on_progress,
    )


def import_notion(
    m: Migration,
    export: Path,
    *,
    user_id: str,
    name: str | None = None,
    dry_run: bool = False,
    allow_empty: bool = False,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import a Notion export's pages as notes: only what changed since the last import."""
    # A new export of the same workspace is another zip file: by default the source is the
    # user's Notion workspace, not the file, so that its pages update the same notes.
    return synchronize(
        m,
        NotionSource(export, max_bytes=m.plan.consumer.max_job_bytes),
        user_id=user_id,
        name=name or "notion",
        dry_run=dry_run,
        allow_empty=allow_empty,
        on_progress=on_progress,
    )
