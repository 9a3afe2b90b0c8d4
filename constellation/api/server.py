"""Running the service on uvicorn, as ``constellation serve`` does.

SIGTERM (and SIGINT) stop accepting connections, let the requests in flight finish, stop the
in-process worker (it finishes the batches it holds), and return: the process exits 0 on
SIGTERM. uvicorn re-raises the signal it caught once it has shut down; for SIGTERM the handler
installed here absorbs it, so a graceful stop is not reported as a death by signal.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from constellation.api.auth import check_bind
from constellation.errors import ConstellationError
from constellation.plan import Plan
from constellation.services import Services

if TYPE_CHECKING:
    from constellation.api.verbs import ConsoleVerbs

log = logging.getLogger("constellation.api")


def serve(
    plan: Plan,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    worker: bool = False,
    services: Services | None = None,
    verbs: ConsoleVerbs | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the plan's service on ``host:port`` (0: a free port) until SIGTERM or SIGINT;
    ``on_listening`` gets the URL once the socket listens; ``verbs`` are the migration's, for
    the console."""
    check_bind(plan, host)
    sock = listen(host, port)
    import uvicorn

    from constellation.api.app import create_app
    from constellation.api.connections import header_deadline_protocol

    app = create_app(plan, worker=worker, services=services, verbs=verbs)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Our access log (one line per request, JSON with --log-json) replaces uvicorn's.
        access_log=False,
        log_config=None,
        lifespan="on",
        # Keep connections open a little longer than a browser's fetch pool expects.
        timeout_keep_alive=30,
        timeout_graceful_shutdown=60,
        http=header_deadline_protocol(plan.service.header_timeout),
    )
    server = uvicorn.Server(config)
    if on_listening is not None:
        bound = sock.getsockname()[1]
        on_listening(f"http://{f'[{host}]' if ':' in host else host}:{bound}")
    previous = signal.signal(signal.SIGTERM, _graceful)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started:
        raise ConstellationError("the service did not start", "see the log lines above")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``: connections wait in its backlog until the server
    accepts them, so the address is usable from the moment this returns."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConstellationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "choose another --port (0 picks a free one) or --host",
        ) from exc
    return sock


def _graceful(signum: int, frame: object) -> None:
    """uvicorn re-raises the SIGTERM it handled after its graceful shutdown; done, not dead."""
