"""A real PostgreSQL server for tests, started by the tests themselves.

``initdb`` and ``pg_ctl`` run as the ``postgres`` user (PostgreSQL refuses root), on a free
loopback port, with the data folder and the unix socket in a temporary folder of their own.
Durability is switched off (fsync, synchronous commit): a test server loses nothing it needs.
Two kinds: the machine's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``), and the PostgreSQL
with the pgvector extension that the ``pgserver`` package ships (Debian bookworm has no
pgvector package), for the pgvector old-system adapter.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.servers import free_port

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


def pgserver_bin() -> Path | None:
    """The binaries inside the ``pgserver`` package (with pgvector), without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if (folder / "postgres").exists() else None


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; :meth:`database` makes a fresh database."""

    def __init__(self, bin_dir: Path) -> None:
        if not (bin_dir / "pg_ctl").exists():
            raise RuntimeError(f"no PostgreSQL server binaries in {bin_dir}")
        self.bin = bin_dir
        self.port = free_port()
        # Not under pytest's tmp folder: that one is private to root, and the server runs as
        # the postgres user.
        self.base = Path(tempfile.mkdtemp(prefix="constellation-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.base, USER)

    def _run(self, *argv: str) -> None:
        result = subprocess.run(
            _as_postgres([str(self.bin / argv[0]), *argv[1:]]),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stderr or result.stdout}\n{log}")

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.base}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER}", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(RuntimeError):  # not running
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)
