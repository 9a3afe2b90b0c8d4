"""Whether an index's stored vectors can be read: a sample query that must find its sample.

An index can count its records and list their metadata while the file that holds its vectors
is empty or torn (Chroma keeps metadata in SQLite and vectors in its HNSW segment): every
search then finds nothing, without an error. :func:`read_back` takes one stored record of a
model version, reads its vector and searches with it, filtered by its own user and version:
the record must come back. ``describe``, ``verify`` and ``recover`` run it per version, and a
search that finds nothing for a user who has records says why (:func:`explain_empty`).
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation import records
from constellation.errors import ConstellationError, DamagedFile
from constellation.index.port import VectorIndex

REBUILD = (
    "restore the index from a backup, or move its folder aside, run `constellation provision` "
    "and `constellation requeue --all` to rebuild it from the notes"
)


@dataclass(frozen=True)
class Readback:
    """The outcome of one version's sample query."""

    version: int
    #: the record searched for (None when the version has no record to sample)
    record_id: str | None
    ok: bool
    detail: str


def read_back(index: VectorIndex, version: int, top_k: int = 10) -> Readback:
    """Search for one stored record of ``version`` with its own vector; it must be found."""
    sample_id: str | None = None
    try:
        sample = next(iter(index.scan(1, version=version)), None)
        if sample is None:
            return Readback(version, None, True, "no records to sample")
        sample_id = sample.id
        user = str(sample.metadata.get(records.USER, ""))
        stored = index.get([sample.id], include_vectors=True).get(sample.id)
        if stored is None or not stored.vector:
            return Readback(version, sample_id, False, "its vector cannot be read back")
        hits = index.query(stored.vector, user_id=user, top_k=top_k, version=version)
    except ConstellationError as exc:
        return Readback(version, sample_id, False, f"reading it back failed: {exc.message}")
    if any(hit.id == sample_id for hit in hits):
        return Readback(version, sample_id, True, f"record {sample_id} found by its own vector")
    if len(hits) == top_k and hits[0].score - hits[-1].score < 1e-6:
        # More records than top_k hold this very vector (notes of identical text): the
        # vectors were read, the sample is only crowded out by its equals.
        return Readback(
            version, sample_id, True, f"{top_k}+ records share record {sample_id}'s vector"
        )
    return Readback(
        version,
        sample_id,
        False,
        f"a search with record {sample_id}'s own vector found {len(hits)} record(s), not it",
    )


def explain_empty(index: VectorIndex, user_id: str, version: int | None, where: str) -> str | None:
    """After a search found nothing: why, where the user has records there.

    ``None`` when the user has no records there (the caller says so). Where they have some,
    a record is read back by its own vector: found, the vectors can be read and the records
    were stored a moment ago (Chroma writes a record's metadata before its vector is in the
    searchable segment, so a search racing the write finds nothing): that is said. Not found,
    the index's vectors cannot be read: :class:`DamagedFile`, naming the way back."""
    held = index.count(user_id=user_id, version=version)
    if not held:
        return None
    check = read_back(index, version) if version is not None else None
    if check is not None and check.ok:
        return (
            f"user {user_id} has {held:,} record(s) there, none searchable yet: records "
            "stored a moment ago become searchable within a second or two; search again"
        )
    raise DamagedFile(
        where,
        "the index",
        f"user {user_id} has {held:,} record(s) there but the search found none"
        + ("" if check is None else f"; {check.detail}"),
        REBUILD,
    )
