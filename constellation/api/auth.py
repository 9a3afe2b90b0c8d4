"""Who may call: bearer tokens from the plan, each with a scope, compared in constant time.

``write`` tokens may call everything; ``read`` tokens the reading endpoints only. ``/healthz``
and the console's page (static files: no data) need no token. A missing or unknown token is a 401, a read token on a writing endpoint a 403.
A plan without tokens serves loopback clients only (and ``constellation serve`` refuses to
listen anywhere else). The check runs before the body is read, so a refused request costs
nothing. The token's *name* (never its value) is kept in the request's state for the log.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from constellation.api.asgi import ASGIApp, Receive, Scope, Send, header, problem, send_json
from constellation.api.page import is_page
from constellation.api.verbs import ACTIONS
from constellation.errors import ConstellationError
from constellation.plan import Plan

#: paths anyone may call
OPEN_PATHS = frozenset({"/healthz"})
#: paths that change something: only ``write`` tokens
WRITE_PATHS = frozenset({"/embed", "/notes", *(f"/migration/{a}" for a in ACTIONS)})


@dataclass(frozen=True)
class Caller:
    name: str
    scope: str


class Tokens:
    """The plan's configured tokens."""

    def __init__(self, plan: Plan) -> None:
        self._tokens = [
            (t.name, t.scope, t.token.get_secret_value().encode())
            for t in plan.service.configured()
            if t.token is not None
        ]

    @property
    def open(self) -> bool:
        """No token configured: loopback clients only, no token asked."""
        return not self._tokens

    def match(self, presented: str) -> Caller | None:
        """The caller whose token this is. Every token is compared, in constant time, so the
        time taken says nothing about which one (or how much of one) matched."""
        given = presented.encode()
        found: Caller | None = None
        for name, scope, value in self._tokens:
            if hmac.compare_digest(given, value):
                found = Caller(name, scope)
        return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(plan: Plan, host: str) -> None:
    """Refuse to listen beyond loopback without tokens."""
    if not is_loopback(host) and Tokens(plan).open:
        unset = [t.name for t in plan.service.tokens if t.token is None]
        why = f" (tokens {', '.join(unset)} have no value: set their variables)" if unset else ""
        raise ConstellationError(
            f"refusing to serve on {host}: the plan has no tokens{why}",
            "add service.tokens to the plan (values from the environment), or serve on 127.0.0.1",
        )


class BearerAuth:
    """ASGI middleware: the token check for every HTTP request."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, body, headers = refusal
        await send_json(send, status, body, headers)

    def _refusal(self, scope: Scope) -> tuple[int, dict[str, object], dict[str, str]] | None:
        state = scope.setdefault("state", {})
        if self.tokens.open:
            client = (scope.get("client") or ("", 0))[0]
            if is_loopback(client):
                state["caller"] = "-"
                return None
            detail = "this service has no tokens configured: it answers loopback clients only"
            return 401, problem("unauthorized", detail), {"WWW-Authenticate": "Bearer"}
        scheme, _, presented = (header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            detail = "send Authorization: Bearer <token>"
            return 401, problem("unauthorized", detail), {"WWW-Authenticate": "Bearer"}
        caller = self.tokens.match(presented.strip())
        if caller is None:
            return (
                401,
                problem("unauthorized", "unknown token"),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        state["caller"] = caller.name
        if scope["path"] in WRITE_PATHS and caller.scope != "write":
            detail = f"token {caller.name!r} has scope {caller.scope}; {scope['path']} needs write"
            return 403, problem("forbidden", detail), {}
        return None
