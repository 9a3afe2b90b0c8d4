"""Provisioning: the embed queue, its dead-letter queue and the vector index.

Redrive arithmetic: a job is tried once, then retried up to ``max_retries`` times, so the queue's
redrive policy moves a message to the dead-letter queue after ``max_retries + 1`` receives
(``maxReceiveCount``). With the default ``max_retries: 3`` that is ``maxReceiveCount: 4``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from constellation.damage import sqlite_file
from constellation.errors import DimensionMismatch, ModelError, ProviderUnavailable
from constellation.index.layout import Layout, layout_name
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import IndexSpec, VectorStore
from constellation.ledger.state import open_state
from constellation.plan import Plan
from constellation.queues.port import Broker, QueueSpec, Redrive
from constellation.services import Services
from phases.steps import Check, Step, StepResult, run_steps


def max_receive_count(max_retries: int) -> int:
    """Receives before dead-lettering: the first try plus ``max_retries`` retries."""
    return max_retries + 1


@dataclass
class EnsureQueue:
    """Create a queue unless one with the same settings exists."""

    broker: Broker
    spec: QueueSpec

    @property
    def resource(self) -> str:
        return f"queue {self.spec.name}"

    def describe(self) -> str:
        redrive = self.spec.redrive
        tail = (
            f", dead-letter {redrive.dead_letter} after {redrive.max_receive_count} receives"
            if redrive
            else ""
        )
        kind = "FIFO queue" if self.spec.fifo else "queue"
        return f"create {kind} {self.spec.name} (visibility {self.spec.visibility_timeout}s{tail})"

    def check(self) -> Check:
        existing = self.broker.inspect(self.spec.name)
        if existing is None:
            return Check("create")
        differences = []
        if existing.fifo != self.spec.fifo:
            kinds = {True: "FIFO", False: "standard"}
            differences.append(
                f"it is a {kinds[existing.fifo]} queue, plan wants {kinds[self.spec.fifo]}"
            )
        if existing.redrive != self.spec.redrive:
            differences.append(
                f"redrive is {_redrive(existing.redrive)}, plan wants {_redrive(self.spec.redrive)}"
            )
        if existing.visibility_timeout != self.spec.visibility_timeout:
            differences.append(
                f"visibility timeout is {existing.visibility_timeout}s, "
                f"plan wants {self.spec.visibility_timeout}s"
            )
        if differences:
            return Check(
                "conflict",
                "; ".join(differences)
                + ". Change the plan to match, or delete the queue (losing its messages) "
                "and provision again",
            )
        return Check("unchanged", f"exists ({existing.url})")

    def apply(self) -> str:
        return self.broker.create(self.spec).url

    def undo(self) -> None:
        self.broker.delete_queue(self.spec.name)


def _redrive(redrive: Redrive | None) -> str:
    if redrive is None:
        return "none"
    return f"to {redrive.dead_letter} after {redrive.max_receive_count} receives"


@dataclass
class EnsureIndex:
    """Create a vector index unless one with the same dimension and metric exists.

    An index in another layout than the plan's (``index.partitions``, or one made before
    partitioning) is a conflict that ``constellation index migrate`` resolves.
    """

    store: PartitionedStore
    spec: IndexSpec
    partitions: int | None = None

    @property
    def resource(self) -> str:
        return f"index {self.spec.name}"

    def describe(self) -> str:
        fields = ", ".join(f"{k} ({v})" for k, v in self.spec.metadata_fields.items())
        return f"create index {self.spec.name} ({self.spec.dimension} dims, {self.spec.metric}; {fields})"

    def check(self) -> Check:
        missing = self.store.missing_partitions(self.spec.name)  # ManifestDamaged: named
        if missing:
            return Check(
                "update",
                f"recreate {len(missing)} missing partition(s), empty ({', '.join(missing)}); "
                "then `constellation requeue --missing` sends their users' notes again",
            )
        existing = self.store.inspect(self.spec.name)
        if existing is None:
            return Check("create")
        differences = []
        if existing.dimension is not None and existing.dimension != self.spec.dimension:
            differences.append(
                f"dimension is {existing.dimension}, plan wants {self.spec.dimension}"
            )
        if existing.metric != self.spec.metric:
            differences.append(f"metric is {existing.metric}, plan wants {self.spec.metric}")
        if differences:
            return Check(
                "conflict",
                "; ".join(differences)
                + ". Give the plan another index name (a model of another dimension needs its "
                "own index: models.<v>.index), or delete this index and provision again",
            )
        layout = Layout.from_metadata(existing.manifest, self.spec.name)
        wanted = self.partitions
        if wanted is not None and (layout.partitions != wanted or layout.moving_to is not None):
            return Check(
                "conflict",
                f"the index is laid out as {layout.describe()}, the plan wants "
                f"{layout_name(wanted)}; move it with `constellation index migrate` "
                "(resumable; searches and writes keep working meanwhile)",
            )
        return Check("unchanged", f"exists ({existing.count} records, {layout.describe()})")

    def apply(self) -> str:
        missing = self.store.missing_partitions(self.spec.name)
        if missing:
            layout = self.store.layout(self.spec.name)
            assert layout is not None
            for count in (layout.partitions, layout.moving_to):
                if count:
                    self.store.create_partitions(self.spec, count)
            return (
                f"recreated {', '.join(missing)} (empty): run `constellation requeue "
                "--missing` to send their users' notes again"
            )
        info = self.store.create(self.spec)
        layout = Layout.from_metadata(info.manifest, self.spec.name)
        return f"{info.dimension} dims, {info.metric}, {layout.describe()}"

    def undo(self) -> None:
        self.store.delete_index(self.spec.name)


@dataclass
class CheckModel:
    """Load a model version and compare its real dimension with the plan's."""

    services: Services
    version: int

    @property
    def resource(self) -> str:
        return f"model v{self.version} {self.services.plan.model(self.version).name}"

    def describe(self) -> str:
        return f"load {self.resource} and check its dimension"

    def check(self) -> Check:
        declared = self.services.plan.model(self.version).dimensions
        try:
            actual = len(self.services.embedder(self.version).embed(["dimension probe"])[0])
        except DimensionMismatch as exc:
            return Check("conflict", exc.message)
        except ProviderUnavailable as exc:
            # a provider answering another length, or refusing our key or request: the plan
            # and the provider disagree (one out of reach is exit 4, raised as it is)
            if exc.kind in ("dimension", "key refused", "refused"):
                return Check("conflict", exc.message)
            raise
        except ModelError:
            raise
        if actual != declared:  # pragma: no cover - the embedder already refuses this
            return Check("conflict", f"model gives {actual} dims, plan says {declared}")
        return Check("check", f"loads, {actual} dims")

    def apply(self) -> str:
        return ""

    def undo(self) -> None:
        pass


@dataclass(frozen=True)
class ProvisionReport:
    plan: str
    environment: str
    dry_run: bool
    results: list[StepResult]

    @property
    def changed(self) -> bool:
        return any(r.outcome in ("created", "updated") for r in self.results)


@dataclass
class RecordState:
    """Write the migration state's first record ("not started") before anything else exists,
    so that a state that goes missing later, beside the queue and the index made here, is an
    error (:class:`~constellation.errors.DamagedFile`) and never reads as "not started"."""

    plan: Plan
    store: VectorStore
    resource: str = "migration state"

    def describe(self) -> str:
        return "record the migration state (not started)"

    def check(self) -> Check:
        file = sqlite_file(self.plan.state_url)
        if file is not None and not file.exists():  # looking creates no file (dry runs)
            return Check("create", self.describe())
        state = open_state(self.plan)
        try:
            if state.exists():
                return Check("unchanged", "recorded")
            moved = self._migrated()
            if moved:
                return Check(
                    "conflict",
                    f"{state.where} holds no migration state, but {moved}: it was emptied or "
                    "replaced. Restore it from a backup",
                )
            return Check("create", self.describe())
        finally:
            state.close()

    def _migrated(self) -> str:
        """What only a migration that began leaves behind, in words ("" when nothing)."""
        archives = sorted((self.plan.data_dir / "archive").glob("*.jsonl.gz"))
        if archives:
            return f"the archive {archives[-1]} exists"
        info = self.store.inspect(self.plan.index.name)
        if info is not None and info.count:
            return f"the index {self.plan.index.name} holds {info.count:,} records"
        return ""

    def apply(self) -> str:
        state = open_state(self.plan)
        try:
            state.record("provision", "migration state recorded: not started")
        finally:
            state.close()
        return "not started"

    def undo(self) -> None:
        pass  # a record of "not started" is what any later provision writes too


def provision_steps(plan: Plan, services: Services) -> list[Step]:
    """The steps that make the plan's resources exist: the state's record first, then the
    dead-letter queue, the queue and the index."""
    queue = plan.queue
    redrive = Redrive(queue.dead_letter, max_receive_count(plan.consumer.max_retries))
    # The model in use now; other versions are provisioned by `model upgrade --to V`.
    steps: list[Step] = [CheckModel(services, plan.default_version)]
    steps.append(RecordState(plan, services.store))
    steps.append(
        EnsureQueue(
            services.broker,
            QueueSpec(queue.dead_letter, queue.visibility_timeout, fifo=queue.fifo),
        )
    )
    steps.append(
        EnsureQueue(
            services.broker,
            QueueSpec(queue.name, queue.visibility_timeout, redrive, fifo=queue.fifo),
        )
    )
    steps += index_steps(plan, services, plan.default_version)
    return steps


def index_steps(plan: Plan, services: Services, version: int) -> list[Step]:
    """The main index, and the version's own index if its model declares one."""
    dimensions = {plan.index.name: plan.index.dimensions}
    model = plan.model(version)
    if model.index:
        dimensions[model.index] = model.dimensions
    return [
        EnsureIndex(
            services.store,
            IndexSpec(name, dims, plan.index.metric, dict(plan.index.metadata)),
            plan.index.partitions,
        )
        for name, dims in dimensions.items()
    ]


def provision(
    plan: Plan,
    services: Services,
    *,
    dry_run: bool = False,
    on_result: Callable[[StepResult], None] | None = None,
) -> ProvisionReport:
    """Create the embed queue, its dead-letter queue and the vector index (safe to repeat)."""
    results = run_steps(provision_steps(plan, services), dry_run=dry_run, on_result=on_result)
    return ProvisionReport(plan.name, plan.environment, dry_run, results)
