"""Telling a damaged file from a busy or missing one, whatever library read it.

SQLite says ``file is not a database`` (a file overwritten by something else) or ``database
disk image is malformed`` (a page torn or zeroed); Chroma passes SQLite's codes on (``code:
26``, ``code: 11``) and its Rust core panics on some damaged files (``PanicException``, which
is not even an ``Exception``). Every command that opens one of our files turns these into
:class:`~constellation.errors.DamagedFile`, naming the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

#: what libraries say about a damaged file (lower case)
_SIGNS = (
    "file is not a database",
    "database disk image is malformed",
    "(code: 26)",
    "(code: 11)",
    "malformed database schema",
)


def is_damage(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says a file is damaged, not busy or missing."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "PanicException":
            return True
        text = str(seen).lower()
        if any(sign in text for sign in _SIGNS):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def detail(exc: BaseException) -> str:
    """The library's own words about the damage, for the message (one line)."""
    seen: BaseException = getattr(exc, "orig", None) or exc
    text = str(seen).strip().splitlines()
    return text[0][:200] if text else type(seen).__name__


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for other databases and memory)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///"))
    return None
