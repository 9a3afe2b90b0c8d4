"""Servers that misbehave slowly, on a free loopback port: one that drips its answer a byte
at a time (each byte well inside any per-read timeout), one that accepts and never answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress


@contextmanager
def dripping_server(every: float = 0.3, answer: bytes | None = None) -> Iterator[str]:
    """Answers every request one byte per ``every`` seconds, for as long as the client
    listens (``answer`` repeated; by default a status line whose headers never end)."""
    payload = answer or b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def drip(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.recv(65536)  # the request
            for byte in payload:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(every)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers (a hung server behind a live port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
