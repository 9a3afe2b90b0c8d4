"""The journal's own parts: who a transition is journaled as, and one journal entry as read.

A command run in a terminal is journaled as ``user@host`` (:func:`default_actor`); the browser
console names its caller's token (:func:`acting_as`). :class:`JournalEntry` is one row of the
journal that :class:`constellation.ledger.state.StateStore` writes with every transition.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from constellation.timefields import EPOCH_SECONDS

__all__ = ["JournalEntry", "acting_as", "current_actor", "default_actor"]


#: who the transitions made in this context are journaled as (see :func:`acting_as`)
_actor: ContextVar[str] = ContextVar("constellation_actor", default="")


@contextmanager
def acting_as(who: str) -> Iterator[None]:
    """Journal the transitions made inside as made by ``who`` (the console names its caller's
    token); elsewhere they are the local user's (:func:`default_actor`)."""
    token = _actor.set(who)
    try:
        yield
    finally:
        _actor.reset(token)


def default_actor() -> str:
    """``user@host`` of this process, as a command run in a terminal is journaled."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def current_actor() -> str:
    """Who a transition made now is journaled as."""
    return _actor.get() or default_actor()


@dataclass(frozen=True)
class JournalEntry:
    id: int
    at: float = field(metadata=EPOCH_SECONDS)
    command: str
    reason: str
    before: dict[str, Any]
    after: dict[str, Any]
    #: who made the change: ``user@host`` for a command, ``console (token NAME)`` for the
    #: browser console; empty for entries written before the journal recorded it
    who: str = ""

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Fields whose value changed: name → (before, after)."""
        keys = [k for k in self.after if k != "updated_at"]
        return {
            k: (self.before.get(k), self.after[k])
            for k in keys
            if self.before.get(k) != self.after[k]
        }
