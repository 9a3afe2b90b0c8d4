"""The old-system contract: one suite, run against every adapter and layout of the port.

Each case is an app's old index as the app left it, made with the app's own calls (plain
chromadb, plain SQL), not ours: Constellation's record format on an embedded folder, an app
layout (ids = the note id, the user in ``owner``, a ``title`` we know nothing of) on an
embedded folder and on `chroma run`, and a pgvector table. The model is the recording fake
(deterministic vectors per text), so searching a note's own text finds that note first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from constellation.errors import LegacyError
from constellation.ledger.db import engine
from constellation.migration.legacy import load_legacy
from constellation.migration.source import Note, NotesSource, create_notes_table, insert_notes
from constellation.plan import Plan, load_plan
from constellation.services import Services
from phases.migrate.catchup import CLOCK_MARGIN, CatchUp
from phases.operate.verify import _old_system
from tests.fakes import RecordingEmbedder
from tests.support.postgres import PostgresServer
from tests.support.servers import ManagedServer

DIM = 8
APP_LAYOUT = {"id": "{noteId}", "user_key": "owner", "note_key": None}


@dataclass
class Case:
    """One old index: the adapter, and the app's own way to put a record into it."""

    kind: str
    legacy: Any
    embedder: RecordingEmbedder
    #: (record id, user, text, extra metadata) → written by the app's own code
    plant: Callable[[str, str, str, dict[str, Any]], None]
    #: record id → its metadata (or row) as the app's own code reads it, None when absent
    peek: Callable[[str], dict[str, Any] | None]
    plan: Plan
    services: Services


def _plan(folder: Path, legacy: dict[str, Any]) -> Path:
    plan = {
        "data_dir": "./data",
        "index": {"dimensions": DIM},
        "models": {1: {"name": "fake", "package": "none", "dimensions": DIM}},
        "legacy": {"model_version": 1, **legacy},
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def _chroma_case(kind: str, folder: Path, server: ManagedServer | None) -> Iterator[Case]:
    import chromadb
    from chromadb.config import Settings

    name = f"app-notes-{uuid.uuid4().hex[:8]}"
    ours = kind == "chroma-ours"
    settings = Settings(anonymized_telemetry=False)
    if server is None:
        path = folder / "app-chroma"
        client = chromadb.PersistentClient(path=str(path), settings=settings)
        where: dict[str, Any] = {"path": str(path)}
    else:
        client = chromadb.HttpClient(host="127.0.0.1", port=server.port, settings=settings)
        where = {"url": server.url}
    collection = client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"})
    layout = {} if ours else {"layout": APP_LAYOUT}
    plan = load_plan(_plan(folder, {"adapter": "chroma", "name": name, **where, **layout}))
    embedder = RecordingEmbedder(dimension=DIM)
    services = Services(plan, embedders={1: embedder})
    legacy = load_legacy(plan, services)
    user_key = "userId" if ours else "owner"

    def plant(record_id: str, user: str, text: str, extra: dict[str, Any]) -> None:
        meta = {user_key: user, **extra} if user else dict(extra)
        if ours:
            meta |= {"noteId": record_id.split(":")[1], "version": 1, "created": 1}
        vector = [float(x) for x in embedder.vector(text)]
        collection.add(ids=[record_id], embeddings=[vector], metadatas=[meta])

    def peek(record_id: str) -> dict[str, Any] | None:
        found = collection.get(ids=[record_id], include=["metadatas"])
        return dict(found["metadatas"][0]) if found["ids"] else None

    yield Case(kind, legacy, embedder, plant, peek, plan, services)
    legacy.close()
    services.close()
    client.delete_collection(name)


def _pgvector_case(folder: Path, server: PostgresServer) -> Iterator[Case]:
    url = server.database("app")
    db = engine(url)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION vector"))
        conn.execute(
            sa.text(
                "CREATE TABLE note_vectors (note_id text PRIMARY KEY, owner text, "
                f"embedding vector({DIM}), title text)"
            )
        )
    layout = {"table": "note_vectors", "id_column": "note_id", "user_column": "owner"}
    plan = load_plan(_plan(folder, {"adapter": "pgvector", "url": url, "layout": layout}))
    embedder = RecordingEmbedder(dimension=DIM)
    services = Services(plan, embedders={1: embedder})
    legacy = load_legacy(plan, services)

    def plant(record_id: str, user: str, text: str, extra: dict[str, Any]) -> None:
        vector = "[" + ",".join(str(float(x)) for x in embedder.vector(text)) + "]"
        with db.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO note_vectors VALUES (:i, :u, CAST(:v AS vector), :t)"),
                {"i": record_id, "u": user or None, "v": vector, "t": extra.get("title")},
            )

    def peek(record_id: str) -> dict[str, Any] | None:
        with db.connect() as conn:
            row = conn.execute(
                sa.text("SELECT owner, title FROM note_vectors WHERE note_id = :i"),
                {"i": record_id},
            ).first()
        return {"owner": row[0], "title": row[1]} if row else None

    yield Case("pgvector", legacy, embedder, plant, peek, plan, services)
    legacy.close()
    services.close()
    db.dispose()


@pytest.fixture(params=["chroma-ours", "chroma-app", "chroma-app-server", "pgvector"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    kind = request.param
    if kind == "pgvector":
        yield from _pgvector_case(tmp_path, request.getfixturevalue("pgvector_postgres"))
    elif kind == "chroma-app-server":
        yield from _chroma_case(kind, tmp_path, request.getfixturevalue("chroma_server"))
    else:
        yield from _chroma_case(kind, tmp_path, None)


def note(note_id: str, user: str, text: str, t: int = 1) -> Note:
    return Note(note_id, user, text, t, t)


def rid(app: Case, note_id: str, user: str) -> str:
    """The id the app gives a note's record."""
    return f"{user}:{note_id}:v1" if app.kind == "chroma-ours" else note_id


def ids(results: list[Any]) -> list[str]:
    return [r.note_id for r in results]


def test_search_finds_what_the_app_wrote_and_only_the_users_notes(app: Case) -> None:
    app.plant(rid(app, "n1", "ana"), "ana", "pay the electricity bill", {"title": "bills"})
    app.plant(rid(app, "n2", "ana"), "ana", "tomatoes and basil", {"title": "garden"})
    app.plant(rid(app, "n3", "ben"), "ben", "pay the electricity bill", {"title": "bills"})
    assert ids(app.legacy.search("pay the electricity bill", "ana", 10))[0] == "n1"
    assert set(ids(app.legacy.search("pay the electricity bill", "ana", 10))) == {"n1", "n2"}
    assert ids(app.legacy.search("pay the electricity bill", "ben", 10)) == ["n3"]
    assert app.legacy.search("anything", "nobody", 10) == []
    with pytest.raises(ValueError, match="user id"):
        app.legacy.search("pay", "", 10)


def test_writes_go_in_the_apps_layout_and_leave_its_other_keys(app: Case) -> None:
    app.plant(rid(app, "n1", "ana"), "ana", "first text", {"title": "kept"})
    app.legacy.write_many([note("n1", "ana", "second text", 2), note("n2", "ana", "a new note")])
    assert app.legacy.count() == 2
    found = app.peek(rid(app, "n1", "ana"))
    assert found is not None and found["title"] == "kept"  # a key we do not know: untouched
    assert found["owner" if app.kind != "chroma-ours" else "userId"] == "ana"
    assert ids(app.legacy.search("second text", "ana", 1)) == ["n1"]
    assert ids(app.legacy.search("a new note", "ana", 1)) == ["n2"]
    # an emptied note is removed, the old way
    app.legacy.write(note("n2", "ana", "   "))
    assert app.legacy.count() == 1 and app.peek(rid(app, "n2", "ana")) is None


def test_count_scan_get_note_keys_and_delete(app: Case) -> None:
    for i in range(7):
        app.plant(rid(app, f"n{i}", f"u{i % 2}"), f"u{i % 2}", f"text {i}", {"title": "t"})
    assert app.legacy.count() == 7
    scanned = list(app.legacy.scan(batch_size=3))  # pages smaller than the table
    assert sorted(r.id for r in scanned) == sorted(rid(app, f"n{i}", f"u{i % 2}") for i in range(7))
    assert all(r.vector is not None and len(r.vector) == DIM for r in scanned), scanned[:1]
    assert sorted(app.legacy.note_keys(batch_size=2)) == sorted(
        (f"u{i % 2}", f"n{i}") for i in range(7)
    )
    record = app.legacy.get("u1", "n3")
    assert record is not None and record.vector == pytest.approx(
        list(app.embedder.vector("text 3"))
    )
    assert app.legacy.get("u1", "missing") is None
    app.legacy.delete_many([("u1", "n3"), ("u0", "n4"), ("u0", "never-there")])
    assert app.legacy.count() == 5 and app.legacy.get("u1", "n3") is None


def test_check_layout_names_the_missing_key(app: Case) -> None:
    app.legacy.write_many([note("n1", "ana", "fine"), note("n2", "ben", "fine too")])
    fits = app.legacy.check_layout()
    assert fits.sampled == 2 and fits.fits, fits.problems
    app.plant(rid(app, "n9", "x"), "", "a record without its user", {"title": "t"})
    broken = app.legacy.check_layout()
    assert not broken.fits
    key = {"chroma-ours": "userId", "pgvector": "owner"}.get(app.kind, "owner")
    assert any(key in problem and "n9" in problem for problem in broken.problems), broken
    # such a record is never served and never counted as a note, and is left where it is
    assert "n9" not in ids(app.legacy.search("a record without its user", "x", 10))
    assert ("", "n9") not in set(app.legacy.note_keys())
    app.legacy.write_many([note("n1", "ana", "rewritten")])
    assert app.legacy.count() == 3


def test_verify_names_the_missing_key(app: Case) -> None:
    checks: list[tuple[str, bool, str]] = []

    def record(name: str, passed: bool, detail: str) -> bool:
        checks.append((name, passed, detail))
        return passed

    app.legacy.write_many([note("n1", "ana", "fine")])
    assert _old_system(app.plan, app.services, record)
    app.plant(rid(app, "n9", "x"), "", "a record without its user", {"title": "t"})
    assert not _old_system(app.plan, app.services, record)
    (name, passed, detail), (_, failed, problem) = checks
    assert (name, passed, failed) == ("old system layout", True, False)
    assert "1 records sampled, all fit" in detail
    key = "userId" if app.kind == "chroma-ours" else "owner"
    assert key in problem and "n9" in problem and "fix legacy.layout" in problem


def test_catch_up_writes_changed_notes_and_removes_deleted_ones(app: Case, tmp_path: Path) -> None:
    """A rollback's catch-up (phases.migrate.catchup) on every adapter: notes changed since a time are
    written the old way, notes the source no longer has are removed, the rest is left alone."""
    url = f"sqlite:///{tmp_path}/notes.db"
    create_notes_table(url)
    source = NotesSource(url, "notes", app.plan.source.columns)
    before = [note(f"n{i}", "ana", f"note {i} as it was", 1_000) for i in range(4)]
    insert_notes(source, before)
    app.legacy.write_many([*before, note("gone", "ana", "deleted from the app meanwhile")])
    app.plant(rid(app, "foreign", "zed"), "", "not a note of the layout", {"title": "t"})
    changed = [note("n1", "ana", "edited while the old system slept", 9_000_000)]
    created = [note("n9", "ben", "created while the old system slept", 9_000_000)]
    insert_notes(source, changed + created)
    m = SimpleNamespace(source=source, legacy_writer=app.legacy, sleep=lambda _: None)
    step = CatchUp(m, since=9_000.0 + CLOCK_MARGIN, wait=0.0)  # type: ignore[arg-type]
    assert "written" in step.apply()
    assert (step.written, step.removed) == (2, 1)
    assert ids(app.legacy.search("edited while the old system slept", "ana", 1)) == ["n1"]
    assert ids(app.legacy.search("created while the old system slept", "ben", 1)) == ["n9"]
    assert app.legacy.get("ana", "gone") is None
    assert app.legacy.get("ana", "n2") is not None
    assert app.peek(rid(app, "foreign", "zed")) is not None  # not the layout's: left alone
    source.close()


def test_an_apps_collection_is_never_created(tmp_path: Path) -> None:
    path = tmp_path / "app-chroma"
    plan = load_plan(
        _plan(tmp_path, {"name": "no-such-notes", "path": str(path), "layout": APP_LAYOUT})
    )
    services = Services(plan, embedders={1: RecordingEmbedder(dimension=DIM)})
    legacy = load_legacy(plan, services)
    with pytest.raises(LegacyError, match="the app's collection no-such-notes does not exist"):
        legacy.search("anything", "ana")
    check = legacy.check_layout()
    assert check.sampled == 0 and "no collection no-such-notes" in check.note
    legacy.close()
    services.close()
    # without a path or URL the old index is the sample app's, in the data folder: created
    in_data = load_plan(_plan(tmp_path, {"name": "sample-notes", "layout": APP_LAYOUT}))
    services = Services(in_data, embedders={1: RecordingEmbedder(dimension=DIM)})
    legacy = load_legacy(in_data, services)
    assert legacy.search("anything", "ana") == [] and legacy.count() == 0
    assert (tmp_path / "data" / "legacy").is_dir()
    legacy.close()
    services.close()


def test_pgvector_names_a_missing_table_or_column(
    tmp_path: Path, pgvector_postgres: PostgresServer
) -> None:
    url = pgvector_postgres.database("app")
    db = engine(url)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION vector"))
        conn.execute(sa.text("CREATE TABLE note_embeddings (id text PRIMARY KEY, owner text)"))
    db.dispose()
    for layout, message in [
        ({"table": "nope"}, "has no table 'nope'"),
        ({"user_column": "owner"}, r"has no column\(s\) embedding"),
    ]:
        plan = load_plan(_plan(tmp_path, {"adapter": "pgvector", "url": url, "layout": layout}))
        services = Services(plan, embedders={1: RecordingEmbedder(dimension=DIM)})
        legacy = load_legacy(plan, services)
        with pytest.raises(LegacyError, match=message):
            legacy.count()
        legacy.close()


class EditingMeanwhile(RecordingEmbedder):
    """The model, while the catch-up embeds its page: the app edits a note and writes it the
    old way through its router (a dual write), as `serve` does during a rollback."""

    def __init__(self, source: NotesSource, legacy: Any, edit: Note) -> None:
        super().__init__(dimension=DIM)
        self.source, self.legacy, self.edit, self.done = source, legacy, edit, False

    def embed(self, texts: Any) -> Any:
        if not self.done and self.edit.content not in texts:
            self.done = True
            insert_notes(self.source, [self.edit])
            self.legacy.write_many([self.edit])  # re-enters embed with the newest text
        return super().embed(texts)


def test_catch_up_never_puts_older_text_over_a_write_made_meanwhile(
    app: Case, tmp_path: Path
) -> None:
    """D1: the catch-up reads a page, embeds it (seconds), then writes; an edit written through
    the router meanwhile must stay: every note ends with its newest text."""
    url = f"sqlite:///{tmp_path}/notes.db"
    create_notes_table(url)
    source = NotesSource(url, "notes", app.plan.source.columns)
    stale = [note(f"n{i}", "ana", f"note {i} edited in phase 4", 9_000_000) for i in range(3)]
    insert_notes(source, stale)
    newest = note("n1", "ana", "note 1 edited again during the rollback", 9_500_000)
    meanwhile = EditingMeanwhile(source, app.legacy, newest)
    app.legacy.embedder = meanwhile
    m = SimpleNamespace(source=source, legacy_writer=app.legacy, sleep=lambda _: None)
    step = CatchUp(m, since=9_000.0 + CLOCK_MARGIN, wait=0.0)  # type: ignore[arg-type]
    step.apply()
    assert meanwhile.done
    for expected in [stale[0], newest, stale[2]]:
        record = app.legacy.get("ana", expected.id)
        assert record is not None and record.vector == pytest.approx(
            list(meanwhile.vector(expected.content)), abs=1e-5
        ), f"{expected.id} does not hold {expected.content!r}"
    assert step.unsettled == 0
    source.close()


def test_constellations_own_records_keep_the_newer_text(tmp_path: Path) -> None:
    """D1: where the old index keeps each note's time (Constellation's record format), an
    older write that arrives late (a slow router, a catch-up page) leaves the newer text."""
    cases = _chroma_case("chroma-ours", tmp_path, None)
    case = next(cases)
    case.legacy.write_many([note("n1", "ana", "the newer text", 2_000)])
    case.legacy.write_many([note("n1", "ana", "the older text", 1_000), note("n2", "ana", "x")])
    record = case.legacy.get("ana", "n1")
    assert record is not None
    assert record.vector == pytest.approx(list(case.embedder.vector("the newer text")), abs=1e-5)
    assert case.legacy.get("ana", "n2") is not None
    case.legacy.write_many([note("n1", "ana", "newer still", 3_000)])
    record = case.legacy.get("ana", "n1")
    assert record is not None
    assert record.vector == pytest.approx(list(case.embedder.vector("newer still")), abs=1e-5)
    next(cases, None)
