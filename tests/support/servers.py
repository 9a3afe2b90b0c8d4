"""Real servers for tests: a moto server (SQS over HTTP) and `chroma run`, on free loopback ports.

They are started as subprocesses, never as in-process mocks, so the adapters are exercised over
the network exactly as against LocalStack, AWS or a deployed Chroma. A server can be stopped and
started again on the same port and folder, which the fault tests use.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} is not installed; install the test extras: pip install -e '.[test]'"
        )
    return found


class ManagedServer:
    """A server subprocess on a fixed loopback port that can be stopped and restarted."""

    def __init__(
        self,
        argv: list[str],
        port: int,
        ready_path: str,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = argv
        self.port = port
        self.ready_path = ready_path
        self.log = log
        #: more environment for the server (on top of this process's)
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited; see {self.log}:\n{self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.argv[0]} did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def moto_server(log_dir: Path) -> ManagedServer:
    port = free_port()
    argv = [_executable("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return ManagedServer(argv, port, "/moto-api/", log_dir / "moto.log")


def chroma_server(data_dir: Path, log_dir: Path) -> ManagedServer:
    port = free_port()
    argv = [
        _executable("chroma"),
        "run",
        "--path",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return ManagedServer(argv, port, "/api/v2/heartbeat", log_dir / "chroma.log")
