"""A git repository as an import source, read with the ``git`` command line.

Items are the files of one commit (``HEAD`` unless a ref is given) whose path matches the globs;
a file's fingerprint is its blob id, which git already keeps as a content hash, so listing a
repository reads no file. Only the files that changed are read (one ``git cat-file --batch``),
and their ``created`` is the commit time of the last commit that touched them (one ``git log``
walk that stops once every wanted path is dated). Comparing blob ids rather than diffing from
the last imported commit keeps working when history is rewritten or the globs change.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from constellation.errors import ImportSourceError
from phases.imports.sync import Document, Entry, text_of

#: file modes that are not regular files: symlinks and submodules
_NOT_FILES = ("120000", "160000")


class GitSource:
    """The files of one commit of a local repository (a working copy or a bare one)."""

    kind = "git"

    def __init__(self, repo: Path, *, globs: Sequence[str] = (), ref: str = "HEAD") -> None:
        self.repo = Path(repo).expanduser().resolve()
        if not self.repo.is_dir():
            raise ImportSourceError(
                f"no repository at {self.repo}", "give the path of a git repository"
            )
        self.globs = tuple(globs)
        self.location = str(self.repo)
        self.ref = ref
        self._git("rev-parse", "--git-dir", what=f"{self.repo} is not a git repository")
        self.marker: str | None = self._git(
            "rev-parse",
            "--verify",
            "--quiet",
            f"{ref}^{{commit}}",
            what=f"{self.repo} has no commit {ref!r}",
            hint="commit the files first, or name another branch or commit with --ref",
        ).strip()

    def entries(self) -> list[Entry]:
        out = self._git("ls-tree", "-r", "-z", "--full-tree", self._commit)
        entries = []
        for line in out.split("\0"):
            if not line:
                continue
            meta, path = line.split("\t", 1)
            mode, kind, blob = meta.split()
            if kind != "blob" or mode in _NOT_FILES or not self._wanted(path):
                continue
            entries.append(Entry(path, path, blob))
        return entries

    def read(self, entries: Sequence[Entry]) -> Iterator[Document]:
        if not entries:
            return
        contents = self._blobs([e.fingerprint for e in entries])
        times = self._commit_times({e.key for e in entries})
        for entry in entries:
            created = times.get(entry.key, 0) * 1000
            data = contents[entry.fingerprint]
            text = text_of(data)
            if text is None:
                yield Document(entry, None, created, "not text (binary or not UTF-8)")
            else:
                yield Document(entry, text, created)

    @property
    def _commit(self) -> str:
        assert self.marker is not None
        return self.marker

    def _wanted(self, path: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(path, g) for g in self.globs)

    def _blobs(self, blobs: Sequence[str]) -> dict[str, bytes]:
        """Blob contents by id, from one ``git cat-file --batch``."""
        request = "".join(f"{blob}\n" for blob in dict.fromkeys(blobs)).encode()
        raw = self._run(["cat-file", "--batch"], stdin=request)
        contents: dict[str, bytes] = {}
        pos = 0
        while pos < len(raw):
            header_end = raw.index(b"\n", pos)
            blob, kind, size = raw[pos:header_end].decode().split()
            start = header_end + 1
            contents[blob] = raw[start : start + int(size)]
            pos = start + int(size) + 1  # the content is followed by a newline
            if kind != "blob":
                raise ImportSourceError(f"{blob} in {self.repo} is a {kind}, not a file")
        return contents

    def _commit_times(self, paths: set[str]) -> dict[str, int]:
        """The commit time (epoch seconds) of the last commit that touched each path."""
        wanted = set(paths)
        times: dict[str, int] = {}
        argv = self._argv(
            "log", "-z", "--format=%x01%ct", "--name-only", "--no-renames", self._commit
        )
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env()
        ) as process:
            assert process.stdout is not None
            current = 0
            buffer = b""
            for chunk in iter(lambda: process.stdout.read(65536), b""):  # type: ignore[union-attr]
                buffer += chunk
                *tokens, buffer = buffer.split(b"\0")
                for token in tokens:
                    name = token.decode("utf-8", "surrogateescape").removeprefix("\n")
                    if name.startswith("\x01"):
                        current = int(name[1:])
                    elif name in wanted:
                        times[name] = current
                        wanted.discard(name)
                if not wanted:
                    process.kill()  # every path is dated: the rest of history is not needed
                    break
        return times

    def _argv(self, *args: str) -> list[str]:
        return ["git", "-C", str(self.repo), *args]

    def _run(
        self, args: list[str], *, stdin: bytes | None = None, what: str = "", hint: str = ""
    ) -> bytes:
        try:
            done = subprocess.run(
                self._argv(*args), input=stdin, capture_output=True, env=_env(), check=False
            )
        except FileNotFoundError as exc:
            raise ImportSourceError(
                "the git command is not installed", "install git (apt-get install git)"
            ) from exc
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise ImportSourceError(
                what or f"git {args[0]} failed in {self.repo}",
                hint or (detail[-1] if detail else f"git {args[0]} exited {done.returncode}"),
            )
        return done.stdout

    def _git(self, *args: str, what: str = "", hint: str = "") -> str:
        return self._run(list(args), what=what, hint=hint).decode("utf-8", "surrogateescape")


def _env() -> dict[str, str]:
    # Never prompt, and keep git's messages in one language for the error lines we pass on.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
