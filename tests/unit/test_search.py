"""The one search of a user's notes (Migration.search): the version choice and its check, the
user guard, the latency each search reports, and what an empty answer says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation import records
from constellation.errors import DamagedFile, UnknownVersion
from constellation.index.port import Hit, VectorIndex, VectorRecord
from constellation.plan import Plan, load_plan
from constellation.query import require_user
from constellation.wiring.migration import Migration
from tests.fakes import MemoryIndex, RecordingEmbedder
from tests.support.migration import write_plan


class TwoVersions:
    """The plan's index and model per version, in memory (what Migration asks of Services)."""

    write = False

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.indexes = {v: MemoryIndex() for v in plan.models}
        self.embedders = {v: RecordingEmbedder(f"model-{v}", 8) for v in plan.models}

    def index(self, version: int | None = None) -> VectorIndex:
        return self.indexes[version or self.plan.default_version]

    def embedder(self, version: int | None = None) -> RecordingEmbedder:
        return self.embedders[version or self.plan.default_version]

    def query_embedder(self, version: int | None = None) -> RecordingEmbedder:
        return self.embedder(version)

    def store_note(self, user: str, note: str, text: str, version: int) -> None:
        vector = self.embedders[version].vector(text)
        meta = {records.USER: user, records.NOTE: note, records.VERSION: version}
        self.indexes[version].upsert(
            [VectorRecord(records.record_id(user, note, version), list(vector), meta)]
        )


class VectorsLost(MemoryIndex):
    """An index that counts its records but cannot read their vectors: every search finds
    nothing, without an error (an emptied Chroma vector file)."""

    def query(self, *args: object, **kwargs: object) -> list[Hit]:
        return []


@pytest.fixture
def systems(tmp_path: Path) -> Iterator[tuple[Migration, TwoVersions, list[float]]]:
    plan = load_plan(write_plan(tmp_path))
    services = TwoVersions(plan)
    services.store_note("ana", "milk", "buy milk", 1)
    services.store_note("ana", "milk", "buy milk", 2)
    services.store_note("ana", "only-in-2", "call the dentist", 2)
    services.store_note("ben", "bens", "buy milk", 1)
    latencies: list[float] = []
    m = Migration(plan, services, observe_query=latencies.append)  # type: ignore[arg-type]
    yield m, services, latencies
    m.close()


def test_the_state_read_versions_are_searched_unless_versions_are_given(systems) -> None:  # type: ignore[no-untyped-def]
    m, _, latencies = systems
    found = m.search("buy milk", "ana", 5)
    assert found.versions == (1,) and [r.note_id for r in found.results] == ["milk"]
    assert found.explanation == "" and latencies and latencies[-1] >= 0

    given = m.search("call the dentist", "ana", 5, versions=[2])
    assert given.versions == (2,)
    assert {r.note_id for r in given.results} == {"milk", "only-in-2"}

    # a model upgrade's switch: both versions merged, a note's newest version preferred
    m.state.change("test", "upgrade", read_versions=(2, 1))
    with Migration(m.plan, m.services) as other:
        merged = other.search("buy milk", "ana", 5)
    assert merged.versions == (2, 1)
    assert {(r.note_id, r.version) for r in merged.results} == {("milk", 2), ("only-in-2", 2)}
    assert len(latencies) == 2  # the last search was another Migration's, not observed here


def test_an_undeclared_version_is_refused_before_any_system_is_asked(systems) -> None:  # type: ignore[no-untyped-def]
    m, services, latencies = systems
    with pytest.raises(UnknownVersion) as refused:
        m.search("buy milk", "ana", 5, versions=[1, 7])
    assert refused.value.exit_code == 2 and refused.value.field == "versions"
    assert refused.value.detail == "version 7 is not declared (plan has 1, 2)"
    assert services.embedders[1].batches == [] and latencies == []


@pytest.mark.parametrize("user", ["", "   "])
def test_no_user_id_no_search(systems, user: str) -> None:  # type: ignore[no-untyped-def]
    m, services, _ = systems
    with pytest.raises(ValueError, match="no query may cross users"):
        m.search("buy milk", user, 5)
    with pytest.raises(ValueError, match="no query may cross users"):
        m.router().route("buy milk", user, 5)
    assert services.embedders[1].batches == []


def test_the_guard_is_one_function() -> None:
    require_user("ana")
    with pytest.raises(ValueError, match="no query may cross users"):
        require_user("\t")


def test_an_empty_answer_says_why(systems) -> None:  # type: ignore[no-untyped-def]
    m, services, _ = systems
    nobody = m.search("buy milk", "carl", 5, versions=[2, 1])
    assert nobody.results == [] and nobody.versions == (2, 1)
    assert nobody.explanation == "user carl has no notes in model versions 2, 1"
    one = m.search("buy milk", "carl", 5)
    assert one.explanation == "user carl has no notes in model version 1"

    blank = m.search(" \u200b\n", "ana", 5)
    assert blank.results == [] and "empty after preprocessing" in blank.explanation

    # the user has records, yet the search finds none: the index cannot be read, not "no notes"
    services.indexes[1] = VectorsLost()
    services.store_note("ana", "milk", "buy milk", 1)
    with pytest.raises(DamagedFile, match="user ana has 1 record"):
        m.search("buy milk", "ana", 5)


class NotYetSearchable(MemoryIndex):
    """An index whose newest records are counted but not yet in its searchable segment: the
    user's own query races the write (Chroma keeps metadata before the vector segment), while
    a record read back by its own vector, asked a moment later, is found."""

    def __init__(self) -> None:
        super().__init__()
        self.lagging = True

    def query(self, *args: object, **kwargs: object) -> list[Hit]:
        if self.lagging:
            self.lagging = False
            return []
        return super().query(*args, **kwargs)  # type: ignore[arg-type]


def test_records_stored_a_moment_ago_are_no_damage(systems) -> None:  # type: ignore[no-untyped-def]
    m, services, _ = systems
    services.indexes[1] = NotYetSearchable()
    services.store_note("ana", "milk", "buy milk", 1)
    found = m.search("buy milk", "ana", 5)
    assert found.results == []
    assert "1 record(s) there, none searchable yet" in found.explanation
