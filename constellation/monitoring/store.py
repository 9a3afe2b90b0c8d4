"""The metrics file: snapshots of every worker's metrics, and alert states (SQLite).

Schema (``<data_dir>/metrics.db``)::

    deployments(deployment PK, plan, environment, queue, queue_created, index_name, index_id,
                first_seen)
    instances(instance PK, plan, environment, role, host, pid, started, last, ended, deployment)
    snapshots(instance, at, samples)          PK (instance, at); samples is JSON:
        {"constellation_jobs_failed_total": [[{"error_type": "not_json"}, 3.0], ...], ...}
    alert_state(plan, environment, rule, state, active_since, changed_at, value, evaluated)

A snapshot holds cumulative values since its instance started (one instance per worker
process), so several workers can write at once and a restart is simply a new instance. Each
instance records the deployment (queue and index incarnation, see :mod:`.deployment`) it ran
against, so figures can be counted for the current deployment only. Each
connection is opened per call, in WAL mode, so the worker's threads and other processes
(``stats`` beside a running worker) read and write safely. Reading never creates the file.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from constellation.damage import detail as damage_detail
from constellation.damage import is_damage
from constellation.errors import DamagedFile, MonitoringError
from constellation.monitoring.deployment import Deployment
from constellation.monitoring.metrics import Labels, Samples
from constellation.timefields import EPOCH_SECONDS

#: snapshots older than this are dropped (each instance keeps its last one, for totals)
RETENTION_SECONDS = 14 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    deployment TEXT PRIMARY KEY, plan TEXT NOT NULL, environment TEXT NOT NULL,
    queue TEXT NOT NULL, queue_created REAL, index_name TEXT NOT NULL, index_id TEXT,
    first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    instance TEXT PRIMARY KEY, plan TEXT NOT NULL, environment TEXT NOT NULL,
    role TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    started REAL NOT NULL, last REAL NOT NULL, ended REAL, deployment TEXT);
CREATE TABLE IF NOT EXISTS snapshots (
    instance TEXT NOT NULL, at REAL NOT NULL, samples TEXT NOT NULL,
    PRIMARY KEY (instance, at));
CREATE INDEX IF NOT EXISTS snapshots_at ON snapshots (at);
CREATE TABLE IF NOT EXISTS alert_state (
    plan TEXT NOT NULL, environment TEXT NOT NULL, rule TEXT NOT NULL,
    state TEXT NOT NULL, active_since REAL, changed_at REAL, value REAL,
    evaluated REAL NOT NULL,
    PRIMARY KEY (plan, environment, rule));
"""

#: instance id → its snapshots, oldest first: (at, samples)
Timeline = dict[str, list[tuple[float, Samples]]]


@dataclass(frozen=True)
class Instance:
    """One process that records metrics."""

    id: str
    plan: str
    environment: str
    role: str
    host: str
    pid: int
    started: float = field(metadata=EPOCH_SECONDS)
    last: float = field(metadata=EPOCH_SECONDS)
    ended: float | None = field(default=None, metadata=EPOCH_SECONDS)
    #: the deployment it ran against (None: recorded before deployments were, or unknown)
    deployment: str | None = None


@dataclass(frozen=True)
class RecordedDeployment:
    """A deployment as the metrics file knows it, with when its first instance registered."""

    deployment: Deployment
    first_seen: float = field(metadata=EPOCH_SECONDS)


@dataclass(frozen=True)
class StoredAlert:
    state: str
    active_since: float | None = field(metadata=EPOCH_SECONDS)
    changed_at: float | None = field(metadata=EPOCH_SECONDS)
    value: float | None


def new_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def encode(samples: Samples) -> str:
    data = {
        name: [[dict(labels), value] for labels, value in series.items()]
        for name, series in samples.items()
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Samples:
    data = json.loads(text)
    return {
        name: {_labels(labels): float(value) for labels, value in series}
        for name, series in data.items()
    }


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


class MetricsStore:
    """The metrics file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._upgraded = False

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                if not self._upgraded:
                    _add_deployment_column(db)
                    self._upgraded = True
                with db:
                    yield db
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise DamagedFile(
                    self.path,
                    "the metrics file",
                    damage_detail(exc),
                    "move it aside: the next worker starts a new one (the figures in it are "
                    "lost; the queue, the index and the migration state are not affected)",
                ) from exc
            raise MonitoringError(
                f"metrics file {self.path}: {exc}",
                "check that the data folder is writable; delete the file to start afresh",
            ) from exc

    # snapshots --------------------------------------------------------------------------------
    def register(self, instance: Instance, deployment: Deployment | None = None) -> None:
        """Record an instance (and the deployment it runs against, the first time it is seen)."""
        with self._db() as db:
            if deployment is not None:
                d = deployment
                db.execute(
                    "INSERT OR IGNORE INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        d.key,
                        d.plan,
                        d.environment,
                        d.queue,
                        d.queue_created,
                        d.index,
                        d.index_id,
                        instance.started,
                    ),
                )
            db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance.id,
                    instance.plan,
                    instance.environment,
                    instance.role,
                    instance.host,
                    instance.pid,
                    instance.started,
                    instance.last,
                    instance.ended,
                    deployment.key if deployment is not None else None,
                ),
            )

    def append(self, instance: str, at: float, samples: Samples) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (instance, at, encode(samples))
            )
            db.execute("UPDATE instances SET last = ? WHERE instance = ?", (at, instance))

    def finish(self, instance: str, at: float) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE instances SET last = ?, ended = ? WHERE instance = ?", (at, at, instance)
            )

    def prune(self, before: float) -> int:
        """Drop snapshots older than ``before``, except each instance's last one."""
        with self._db() as db:
            cursor = db.execute(
                "DELETE FROM snapshots WHERE at < ? AND at < "
                "(SELECT MAX(s.at) FROM snapshots s WHERE s.instance = snapshots.instance)",
                (before,),
            )
            return cursor.rowcount

    def instances(
        self, plan: str, environment: str, deployments: Sequence[str] | None = None
    ) -> list[Instance]:
        """The instances of one plan and environment (of the given deployments only, if any)."""
        if not self.exists:
            return []
        sql = (
            "SELECT instance, plan, environment, role, host, pid, started, last, ended, "
            "deployment FROM instances WHERE plan = ? AND environment = ?"
        )
        params: list[object] = [plan, environment]
        if deployments is not None:
            sql += f" AND deployment IN ({', '.join('?' * len(deployments)) or 'NULL'})"
            params += list(deployments)
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY started", params).fetchall()
        return [Instance(*row) for row in rows]

    def deployments(self, plan: str, environment: str) -> list[RecordedDeployment]:
        """Every deployment of one plan and environment that recorded metrics, oldest first."""
        if not self.exists:
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT deployment, plan, environment, queue, queue_created, index_name, "
                "index_id, first_seen FROM deployments WHERE plan = ? AND environment = ? "
                "ORDER BY first_seen",
                (plan, environment),
            ).fetchall()
        return [RecordedDeployment(Deployment(*row[:7]), row[7]) for row in rows]

    def load(
        self,
        plan: str,
        environment: str,
        since: float,
        until: float,
        deployments: Sequence[str] | None = None,
    ) -> Timeline:
        """Snapshots in ``(since, until]``, plus each instance's last one at or before ``since``
        (its baseline), for the instances of one plan and environment (and, if given, of
        those deployments only)."""
        if not self.exists:
            return {}
        scope = (
            "instance IN (SELECT instance FROM instances WHERE plan = :plan AND environment = :env"
            + (
                f" AND deployment IN ({_placeholders(deployments)})"
                if deployments is not None
                else ""
            )
            + ")"
        )
        sql = (
            f"SELECT instance, at, samples FROM snapshots WHERE at > :since AND at <= :until "
            f"AND {scope} "
            "UNION ALL "
            "SELECT s.instance, s.at, s.samples FROM snapshots s JOIN "
            f"(SELECT instance, MAX(at) AS at FROM snapshots WHERE at <= :since AND {scope} "
            "GROUP BY instance) b ON s.instance = b.instance AND s.at = b.at "
            "ORDER BY 2"
        )
        params: dict[str, object] = {
            "plan": plan,
            "env": environment,
            "since": since,
            "until": until,
            **{f"d{i}": key for i, key in enumerate(deployments or ())},
        }
        with self._db() as db:
            rows = db.execute(sql, params).fetchall()
        timeline: Timeline = {}
        for instance, at, samples in rows:
            timeline.setdefault(instance, []).append((at, decode(samples)))
        return timeline

    # alert states -----------------------------------------------------------------------------
    def alert_states(self, plan: str, environment: str) -> dict[str, StoredAlert]:
        if not self.exists:
            return {}
        with self._db() as db:
            rows = db.execute(
                "SELECT rule, state, active_since, changed_at, value FROM alert_state "
                "WHERE plan = ? AND environment = ?",
                (plan, environment),
            ).fetchall()
        return {rule: StoredAlert(*rest) for rule, *rest in rows}

    def save_alert_states(
        self, plan: str, environment: str, states: dict[str, StoredAlert], at: float
    ) -> None:
        with self._db() as db:
            db.executemany(
                "INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (plan, environment, rule, s.state, s.active_since, s.changed_at, s.value, at)
                    for rule, s in states.items()
                ],
            )


def _placeholders(keys: Sequence[str]) -> str:
    """Named parameters ``:d0, :d1, ...`` for an ``IN`` list (``NULL`` matches nothing)."""
    return ", ".join(f":d{i}" for i in range(len(keys))) or "NULL"


def _add_deployment_column(db: sqlite3.Connection) -> None:
    """Files written before deployments were recorded lack ``instances.deployment``."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(instances)")}
    if "deployment" in columns:
        return
    try:
        db.execute("ALTER TABLE instances ADD COLUMN deployment TEXT")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another process added it just now
            raise
