"""One way to hide secrets in anything we print, log or store: :func:`masked`.

Plans carry secrets inside URLs (``postgresql://app:PASSWORD@db/notes``,
``http://admin:PASSWORD@prometheus:9090``, a webhook with ``?token=...``). Every error message
(:class:`~constellation.errors.ConstellationError` masks its own), every log line (the CLI's
log handler) and every row we store about failures goes through :func:`masked`, so a password
that reached a URL never reaches an operator's terminal, a log file or the failure table.
"""

from __future__ import annotations

import re

MASK = "***"

#: ``scheme://user:password@``: the password, whatever the scheme (SQLAlchemy URLs, http(s))
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^@\s/]+)@", re.I)
#: query parameters that carry credentials: ``?token=...``, ``&password=...``, ``api_key=...``
_PARAMETER = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|token|access_token|secret|api[_-]?key|sig|signature)=)"
    r"(?P<secret>[^&;#\s'\"]+)",
    re.I,
)


def masked(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL password and credential parameter replaced by ``***``, and
    any of ``secrets`` (tokens known to the caller) too. Text without secrets is unchanged."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    out = _PARAMETER.sub(lambda m: f"{m['head']}{MASK}", out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    return out


def location(url: str) -> str:
    """A URL as messages name it: masked, without a trailing slash."""
    return masked(url).rstrip("/")
