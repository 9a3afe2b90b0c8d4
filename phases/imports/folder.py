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
        """Every file with its size (from stat) and fingerprint; a file that cannot be read is
        listed with the reason, to be skipped and reported (the rest is imported)."""
        entries = []
        for path in self._files():
            key = path.relative_to(self.root).as_posix()
            try:
                size = path.stat().st_size
                entries.append(Entry(key, key, _sha256(path), size))
            except OSError as exc:
                why = f"unreadable: {exc.strerror or exc}"
                entries.append(Entry(key, key, f"unreadable:{exc.errno}", problem=why))
        return sorted(entries, key=lambda e: e.key)

    def read(self, entries: Sequence[Entry]) -> Iterator[Document]:
        for entry in entries:
            path = self.root / entry.key
            try:
                with path.open("rb") as file:
                    # Never more than the size it was listed with (which the import checked
                    # against its limit), plus one byte to see a file that grew since.
                    data = file.read(entry.size + 1) if entry.size is not None else file.read()
                created = int(path.stat().st_mtime * 1000)
            except OSError as exc:
                # removed or unreadable since it was listed: report it, import the rest
                yield Document(entry, None, 0, f"unreadable: {exc.strerror or exc}")
                continue
            if entry.size is not None and len(data) > entry.size:
                yield Document(entry, None, 0, "grew while it was imported: import again")
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
    """The file's SHA-256, read in chunks (memory stays flat); OSError when unreadable."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
