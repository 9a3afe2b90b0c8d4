"""The console's page: static files (HTML, one script, one style sheet, the vendored uPlot)
served at ``/`` and ``/console`` with a strict Content-Security-Policy.

The files hold no data and no secret, so they need no token: the page asks for one, keeps it
in the tab's ``sessionStorage`` and sends it as a bearer header on every JSON call (never in a
URL, never in a cookie). The policy allows this origin's scripts, styles and calls only: no
inline script or style, no other origin, no frames, no forms posting anywhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from constellation.api.asgi import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")
#: where the page's own files are served from
STATIC_PREFIX = "/console/static"
#: the page's addresses
PAGE_PATHS = frozenset({"/", "/console", "/console/"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/console")
@router.get("/console/")
def page() -> FileResponse:
    """The console (its data comes from the JSON endpoints, with the token the page asks for)."""
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


def static_files() -> StaticFiles:
    """The page's script, style sheet and vendored chart library."""
    return StaticFiles(directory=STATIC)


def is_page(path: str) -> bool:
    """A path of the page or its files (served without a token)."""
    return path in PAGE_PATHS or path.startswith(STATIC_PREFIX + "/")


class PageHeaders:
    """ASGI middleware: the security headers on the page and its files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(
                        (k, v)
                        for k, v in message.get("headers", [])
                        if bytes(k).lower().decode("latin-1") not in HEADERS
                    ),
                    *((k.encode(), v.encode()) for k, v in HEADERS.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
