"""The shim's catalog store: local blocks only, unless a thread may reach the network."""

from __future__ import annotations

import threading

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.errors import BlockNotFoundError
from ipfsbin.serve.packages import render_body
from ipfsbin.store.local_first import LocalFirstStore
from ipfsbin.store.memory import MemoryBlockStore
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info

NAME = "k51test"


class _Counting(MemoryBlockStore):
    """The network: counts what it is asked."""

    def __init__(self, source: MemoryBlockStore) -> None:
        super().__init__()
        self.put_many((cid, source.get(cid)) for cid in source)
        self.gets = 0


def _stores(index: Index, *absent: CID) -> tuple[LocalFirstStore, _Counting, _Counting]:
    local = MemoryBlockStore()
    local.put_many((c, index.store.get(c)) for c in index.store if c not in absent)
    network, quick = _Counting(index.store), _Counting(MemoryBlockStore())
    return LocalFirstStore(local, network, quick), network, quick


def _index() -> Index:
    index = Index()
    index.add("foo", "app-misc/foo-1")
    index.add("bar", "app-misc/bar-2")
    index.add("baz", "dev-util/baz-1")
    return index


def test_outside_reaching_only_local_blocks_are_read_and_a_miss_is_remembered() -> None:
    index = _index()
    bar = index.manifests["bar"]
    store, network, quick = _stores(index, bar)
    assert store.get(index.manifests["foo"])
    with pytest.raises(BlockNotFoundError, match="fetched in the background"):
        store.get(bar)
    assert network.gets == 0 and quick.gets == 0
    assert store.missed() == 1
    with store.reaching():
        assert store.get(bar)
    assert network.gets == 1 and store.take_missed() == {bar} and store.missed() == 0


def test_reaching_is_per_thread() -> None:
    index = _index()
    bar = index.manifests["bar"]
    store, network, _ = _stores(index, bar)
    failed: list[BaseException] = []

    def other() -> None:
        try:
            store.get(bar)
        except BlockNotFoundError as exc:
            failed.append(exc)

    with store.reaching():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(failed) == 1 and network.gets == 0


def test_briefly_asks_quick_until_its_first_miss() -> None:
    index = _index()
    absent = (index.manifests["foo"], index.manifests["bar"])
    store, network, quick = _stores(index, *absent)
    with store.briefly():
        for cid in absent:
            with pytest.raises(BlockNotFoundError):
                store.get(cid)
    assert quick.gets == 1 and network.gets == 0  # one short wait, not one per block
    assert store.take_missed() == set(absent)


def test_a_build_missing_blocks_is_listed_once_they_are_fetched() -> None:
    index = _index()
    head, host = index.head(), host_info()  # its nodes are local: sync holds them
    store, _, _ = _stores(index, index.manifests["bar"])
    builder = CatalogBuilder(BuildCache(store), render=render_body)
    with store.briefly():
        first = builder.build([head], host=host, policy=ClientPolicy(), now=NOW)
    assert {o.cpv for o in first.offers[NAME]} == {"app-misc/foo-1", "dev-util/baz-1"}
    assert store.missed() == 1
    builder.build([head], host=host, policy=ClientPolicy(), now=NOW)
    assert builder.rejudged == 0  # nothing moved and no retry asked
    store.take_missed()
    builder.retry_unreadable()
    with store.reaching():
        second = builder.build([head], host=host, policy=ClientPolicy(), now=NOW)
    assert builder.rejudged == 1
    assert {o.cpv for o in second.offers[NAME]} == {
        "app-misc/bar-2",
        "app-misc/foo-1",
        "dev-util/baz-1",
    }
    full = CatalogBuilder(BuildCache(index.store), render=render_body)
    full.build([head], host=host, policy=ClientPolicy(), now=NOW)
    assert builder.bodies[NAME] == full.bodies[NAME]
