"""The embedded index's exclusive writer lock on its folder.

Chroma's embedded mode is safe across threads but not across processes, so a process that
writes to an embedded index first takes ``fcntl.flock`` on a lock file inside the folder,
without waiting. A second process is refused at once with :class:`IndexLocked`, whose message
names the holder's pid and points to the Chroma server set-up.

The lock belongs to the *process*, not to one store object. ``flock`` locks belong to an open
file description: if two stores in one process each opened the lock file and called ``flock``,
the second would be refused by the first, although both write through the same in-process Chroma
system (Chroma itself shares one system per folder within a process). So the held locks live
in a module-level registry, guarded by a ``threading.Lock``, with a reference count per folder;
the file is unlocked when the last holder in the process releases it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

from constellation.errors import IndexLocked, VectorIndexError

#: the lock file inside the index folder; it is never deleted (deleting lock files races)
LOCK_FILE_NAME = ".constellation-writer.lock"


@dataclass
class _Held:
    fd: int
    holders: int


# Process state, on purpose (see the module docstring): folder → its open, locked lock file.
_registry: dict[Path, _Held] = {}
_registry_lock = threading.Lock()


def _forget_inherited_locks() -> None:
    """In a forked child, drop the parent's locks: they are the parent's, not ours.

    The child's copies of the descriptors are closed (the parent keeps its lock; a ``flock`` is
    released only when every descriptor of the open file description is closed), so the child
    never writes believing it holds the lock, and never keeps the lock alive after the parent
    lets go.
    """
    global _registry_lock
    _registry_lock = threading.Lock()  # it may have been held by another thread at fork time
    for held in _registry.values():
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _registry.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_locks)


class FolderLock:
    """One holder of the process's writer lock on ``folder``; :meth:`release` lets go of it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._released = False

    def release(self) -> None:
        """Drop this holder; the file is unlocked when the process's last holder drops."""
        if self._released:
            return
        self._released = True
        with _registry_lock:
            held = _registry.get(self.folder)
            if held is None:
                return
            held.holders -= 1
            if held.holders > 0:
                return
            del _registry[self.folder]
            try:
                # clear the pid first, so nobody reads a stale holder after we let go
                os.ftruncate(held.fd, 0)
                fcntl.flock(held.fd, fcntl.LOCK_UN)
            finally:
                os.close(held.fd)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire(folder: Path) -> FolderLock:
    """Take (or share, within this process) the exclusive writer lock on ``folder``.

    Raises :class:`IndexLocked` at once when another process holds it.
    """
    folder = Path(folder).resolve()
    with _registry_lock:
        held = _registry.get(folder)
        if held is not None:
            held.holders += 1
            return FolderLock(folder)
        _registry[folder] = _Held(fd=_lock_file(folder), holders=1)
    return FolderLock(folder)


def holds(folder: Path) -> bool:
    """Whether this process holds the writer lock on ``folder``."""
    with _registry_lock:
        return Path(folder).resolve() in _registry


def holder(folder: Path) -> str | None:
    """``pid N`` (or ``pid unknown``) of another process holding the writer lock on ``folder``,
    or None when no other process holds it. Looks without taking it for longer than a moment."""
    folder = Path(folder).resolve()
    if holds(folder):
        return None
    path = folder / LOCK_FILE_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None  # no lock file: nobody ever wrote here
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd)
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lock_file(folder: Path) -> int:
    """Open and lock the folder's lock file, write our pid into it, return its descriptor."""
    path = folder / LOCK_FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # os.open's descriptors are not inherited by child programs (PEP 446)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise VectorIndexError(
            f"cannot open the lock file {path}: {exc.strerror or exc}",
            "check that the index folder exists and is writable",
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        pid = _read_pid(fd)
        os.close(fd)
        raise IndexLocked(
            f"the embedded index at {folder} is in use by another process ({pid})",
            f"stop it, or run a Chroma server (`chroma run --path {shlex.quote(str(folder))}`) "
            "and set index.url in the plan so several processes can write",
        ) from exc
    except OSError as exc:
        os.close(fd)
        raise VectorIndexError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> str:
    """``pid N`` from the lock file, or ``pid unknown`` while the holder has not written it."""
    text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"
