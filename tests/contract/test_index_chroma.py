"""The vector-index contract (:mod:`tests.contract.index_contract`) run against Chroma: an
embedded folder (a fresh one per test), the session's `chroma run` server (every test with a
collection name of its own, deleted afterwards), and the partitioned layout over each; and what
only Chroma has (its location, the writer lock, auth, the URL's form, a lazy import).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from constellation.errors import IndexLocked, VectorIndexError
from constellation.index import lock
from constellation.index.chroma import ChromaStore
from constellation.index.partitioned import PartitionedStore
from constellation.index.port import IndexSpec, VectorIndex
from tests.contract.index_contract import PARTITIONS, IndexContract, contract_user
from tests.support import servers
from tests.support.token_proxy import token_proxy


def _open_for_writing(path: str) -> str:
    """Run in another process: try to open the embedded index for writing."""
    try:
        store = ChromaStore(path=Path(path), write=True)
    except IndexLocked as exc:
        return f"locked: {exc}"
    store.close()
    return "opened"


class TestEmbeddedChroma(IndexContract):
    """PersistentClient on a fresh folder per test."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ChromaStore]:
        store = ChromaStore(path=tmp_path / "index")
        yield store
        store.close()

    @pytest.fixture
    def name(self) -> str:
        return f"contract-{uuid.uuid4().hex[:12]}"  # the folder is thrown away with tmp_path

    def test_location_is_the_folder(
        self, store: ChromaStore, index: VectorIndex, tmp_path: Path
    ) -> None:
        info = store.inspect(index.name)
        assert info is not None
        assert info.location == str((tmp_path / "index").resolve())

    def test_writer_lock_is_per_process(
        self, store: ChromaStore, index: VectorIndex, tmp_path: Path
    ) -> None:
        folder = tmp_path / "index"
        second = ChromaStore(path=folder)  # the same process shares the lock
        assert second.inspect(index.name) is not None
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            refused = pool.apply(_open_for_writing, (str(folder),))
            assert refused.startswith("locked: ")
            assert str(folder.resolve()) in refused
            assert f"in use by another process (pid {os.getpid()})" in refused
            assert f"chroma run --path {folder.resolve()}" in refused
            assert "index.url" in refused
            # a reader in this process needs no lock, and does not hold it
            ChromaStore(path=folder, write=False).close()
            store.close()
            assert lock.holds(folder)  # `second` still holds it
            second.close()
            assert not lock.holds(folder)
            assert pool.apply(_open_for_writing, (str(folder),)) == "opened"

    def test_closed_store_refuses_work(self, store: ChromaStore, name: str) -> None:
        store.close()
        store.close()  # idempotent
        with pytest.raises(VectorIndexError, match="closed"):
            store.inspect(name)


@pytest.mark.servers
class TestChromaServer(IndexContract):
    """HttpClient against the session's `chroma run`."""

    @pytest.fixture
    def store(self, chroma_server: servers.ManagedServer) -> Iterator[ChromaStore]:
        store = ChromaStore(url=chroma_server.url)
        yield store
        store.close()

    def test_location_is_the_url(
        self, store: ChromaStore, index: VectorIndex, chroma_server: servers.ManagedServer
    ) -> None:
        info = store.inspect(index.name)
        assert info is not None
        assert info.location == chroma_server.url

    def test_unreachable_server_names_the_url(self) -> None:
        url = f"http://127.0.0.1:{servers.free_port()}"
        with pytest.raises(VectorIndexError) as caught:
            ChromaStore(url=url)
        message = str(caught.value)
        assert f"Chroma server at {url} is unreachable" in message
        assert "chroma run" in message and "index.url" in message
        assert isinstance(caught.value.__cause__, Exception)

    def test_an_auth_token_is_sent_and_a_server_refusing_it_is_named(
        self, chroma_server: servers.ManagedServer
    ) -> None:
        """The plan's index.auth_token reaches a server that demands it (`chroma run` behind a
        token-checking proxy: Chroma 1.x's server takes no auth settings); without it, or with
        another, the refusal names the token setting."""
        name = f"contract-{uuid.uuid4().hex[:12]}"
        with token_proxy(chroma_server.url, "test-token-123") as proxy:
            with ChromaStore(url=proxy.url + "/", auth_token="test-token-123") as store:
                assert store.inspect(name) is None
                store.create(IndexSpec(name, 3))
                assert store.inspect(name) is not None
            assert proxy.seen and set(proxy.seen) == {"test-token-123"}, proxy.seen
            for token in (None, "another-token"):
                refused = pytest.raises(VectorIndexError, match="refused the credentials")
                with refused as caught, ChromaStore(url=proxy.url, auth_token=token) as store:
                    store.inspect(name)
                assert "index.auth_token" in str(caught.value)
            assert "" in proxy.seen and "another-token" in proxy.seen
        with ChromaStore(url=chroma_server.url) as store:
            store.delete_index(name)

    def test_a_url_that_is_not_a_server_address_is_refused(self) -> None:
        with pytest.raises(VectorIndexError, match="http://host:port"):
            ChromaStore(url="127.0.0.1:8000")


class TestPartitionedEmbedded(IndexContract):
    """The partitioned layout over an embedded Chroma folder."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[PartitionedStore]:
        store = PartitionedStore(
            ChromaStore(path=tmp_path / "index"), PARTITIONS, user_of_id=contract_user
        )
        yield store
        store.close()

    @pytest.fixture
    def name(self) -> str:
        return f"contract-{uuid.uuid4().hex[:12]}"


@pytest.mark.servers
class TestPartitionedServer(IndexContract):
    """The partitioned layout over the session's `chroma run`."""

    @pytest.fixture
    def store(self, chroma_server: servers.ManagedServer) -> Iterator[PartitionedStore]:
        inner = ChromaStore(url=chroma_server.url)
        store = PartitionedStore(inner, PARTITIONS, user_of_id=contract_user)
        yield store
        store.close()


def test_importing_the_adapter_does_not_import_chromadb() -> None:
    code = "import sys, constellation.index.chroma; sys.exit('chromadb' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
