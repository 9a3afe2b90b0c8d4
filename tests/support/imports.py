"""Import sources built by tests: a git repository with commits, and a Notion export zip."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path


class Repo:
    """A git repository in a temporary folder; each commit gets the time it is given."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, when: int | None = None) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        if when is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def write(self, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)

    def commit(self, message: str, when: int, files: dict[str, str | bytes] | None = None) -> str:
        """Write ``files``, stage everything (deletions too) and commit at ``when`` (epoch s)."""
        self.write(files or {})
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, when=when)
        return self.git("rev-parse", "HEAD").strip()

    def remove(self, name: str) -> None:
        (self.path / name).unlink()


#: page ids as Notion writes them: 32 lowercase hex digits
HOME = "0123456789abcdef0123456789abcdef"
MEETING = "11111111111111111111111111111111"
TASKS = "22222222222222222222222222222222"
REPORT_ROW = "33333333333333333333333333333333"


def notion_export(
    path: Path,
    *,
    meeting: str = "# Meeting notes\n\nWe agreed to ship the importer on Friday.\n",
    with_home: bool = True,
    nested: bool = False,
) -> Path:
    """A zip in Notion's "Markdown & CSV" layout: a top page with a sub-page and a database
    whose rows are pages (one row has its page, one only its CSV cells, one only in _all.csv).
    ``nested`` wraps it the way large exports come: a zip holding ``Export-…-Part-1.zip``."""
    home = f"Workspace Home {HOME}"
    tasks = f"{home}/Tasks {TASKS}"
    header = "Name,Status,Last edited time\n"
    rows = 'Write report,Done,"January 5, 2024 3:04 PM"\nPlan trip,Todo,"March 2, 2024 9:30 AM"\n'
    entries: dict[str, str | bytes] = {
        f"{home}/Meeting notes {MEETING}.md": meeting,
        f"{tasks}.csv": header + rows,
        f"{tasks}_all.csv": header + rows + 'Hidden row,Archived,"April 1, 2024 8:00 AM"\n',
        f"{tasks}/Write report {REPORT_ROW}.md": (
            "# Write report\n\nStatus: Done\nLast edited time: January 5, 2024 3:04 PM\n\n"
            "Summarize the quarter's search latency numbers.\n"
        ),
        f"{home}/diagram.png": b"\x89PNG\r\n\x1a\n\0\0\0binary",
    }
    if with_home:
        entries[f"{home}.md"] = "# Workspace Home\n\nEverything about the notes app lives here.\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 12, 0, 0))
            archive.writestr(info, content)
    data = buffer.getvalue()
    if nested:
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as archive:
            archive.writestr("Export-5f2c-Part-1.zip", data)
        data = outer.getvalue()
    path.write_bytes(data)
    return path
