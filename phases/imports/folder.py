"""A folder of files as an import source.

Items are the regular files under the folder whose relative path matches the globs (all files
when none is given); hidden files and folders (``.git``, ``.obsidian``) and symbolic links are
left out. A file's fingerprint is the SHA-256 of its bytes and its ``created`` its modification
time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from constellation.errors import ImportSourceError
from phases.imports.sync import Document, Entry, text_of


class FolderSource:
    """The files under one folder."""

    kind = "folder"
    marker: str | None = None

    def __init__(self, folder: Path, *, globs: Sequence[str] = ()) -> None:
        self.root = Path(folder).expanduser().resolve()
        if not self.root.is_dir():
            raise ImportSourceError(f"no folder at {self.root}", "give the path of a folder")
        self.globs = tuple(globs)
        self.location = str(self.root)

    def entries(self) -> list[Entry]:
        entries = []
        for path in self._files():
            key = path.relative_to(self.root).as_posix()
            entries.append(Entry(key, key, _sha256(path)))
        return sorted(entries, key=lambda e: e.key)

    def read(self, entries: Sequence[Entry]) -> Iterator[Document]:
        for entry in entries:
            path = self.root / entry.key
            try:
                data = path.read_bytes()
                created = int(path.stat().st_mtime * 1000)
            except OSError as exc:
                # removed or unreadable since it was listed: report it, import the rest
                yield Document(entry, None, 0, f"unreadable: {exc.strerror or exc}")
                continue
            # The fingerprint must describe what is sent, even if the file changed meanwhile.
            fresh = Entry(entry.key, entry.title, hashlib.sha256(data).hexdigest())
            text = text_of(data)
            if text is None:
                yield Document(fresh, None, created, "not text (binary or not UTF-8)")
            else:
                yield Document(fresh, text, created)

    def _files(self) -> Iterator[Path]:
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                if self._wanted(path.relative_to(self.root).as_posix()):
                    yield path

    def _wanted(self, key: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(key, g) for g in self.globs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ImportSourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()
