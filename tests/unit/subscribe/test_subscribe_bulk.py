"""RefsBulk's bookkeeping over an in-memory tree: a walk that stalls is finished otherwise."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from typing import cast

import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe import _bulk
from ipfsbin.subscribe._bulk import RefsBulk
from ipfsbin.subscribe._delta import tree_delta


class _Refs:
    """Kubo's ``refs -r -u --max-depth`` over a memory tree: depth-first, each child printed
    before its own subtree; stops for good after ``stall_after`` refs of its first walk, and
    in every walk at a block in ``never`` (one no peer has)."""

    def __init__(
        self, tree: ProllyTree, stall_after: int | None, never: frozenset[CID] = frozenset()
    ) -> None:
        self.tree = tree
        self.stall_after = stall_after
        self.never = never
        self.walks = 0

    def refs(self, cids: Sequence[CID], *, max_depth: int) -> Iterator[CID]:
        self.walks += 1
        first = self.walks == 1
        printed = 0

        def below(cid: CID, depth: int) -> Iterator[CID]:
            for child in self.tree.load(cid).children:
                yield child
                if depth + 1 < max_depth:
                    yield from below(child, depth + 1)

        for top in cids:
            for cid in below(top, 0):
                stalled = first and self.stall_after is not None and printed == self.stall_after
                if stalled or cid in self.never:
                    time.sleep(3600)  # abandoned by the reader; a daemon thread
                printed += 1
                yield cid


@pytest.mark.parametrize("stall_after", [None, 0, 1, 37, 300])
def test_bulk_moves_every_node_once_even_when_a_walk_stalls(
    stall_after: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bulk, "_STALL", 1.0)
    source, tree, root = _tree(20_000)
    kubo = _Refs(tree, stall_after)
    bulk = _refs_bulk(kubo, source, source)
    _moves_every_node_once(source, root, bulk)
    # a starved machine may leave one more walk behind: what counts is that each node came once
    assert bulk.restarts >= (0 if stall_after is None else 1)
    assert kubo.walks > bulk.restarts


class _Fetch(MemoryBlockStore):
    """The one-by-one fetch: counts what it is asked for."""

    def __init__(self, source: MemoryBlockStore) -> None:
        super().__init__()
        self.put_many((c, source.get(c)) for c in source)
        self.asked: list[CID] = []

    def get(self, cid: CID) -> bytes:
        self.asked.append(cid)
        return super().get(cid)


def _refs_bulk(kubo: _Refs, source: MemoryBlockStore, fetch: MemoryBlockStore) -> RefsBulk:
    """The bulk mover over ``kubo``'s walks, reading what they list from ``source``."""
    return RefsBulk(
        cast(KuboClient, kubo), lambda cids: [source.get(c) for c in cids], fetch, workers=2
    )


def _moves_every_node_once(source: MemoryBlockStore, root: CID, bulk: RefsBulk) -> None:
    moved = tree_delta(source, root, bulk=bulk)
    walked = tree_delta(source, root)
    assert len(moved.added) == len(set(moved.added)) == len(walked.added)
    assert set(moved.added) == set(walked.added)


def _tree(entries: int) -> tuple[MemoryBlockStore, ProllyTree, CID]:
    rng = random.Random(9)
    source = MemoryBlockStore()
    tree = ProllyTree(source)
    root = tree.build(sorted((f"k{rng.randrange(10**9):09d}/{i}", i) for i in range(entries)))
    assert tree.load(root).level >= 2
    return source, tree, root


def test_a_stalled_walk_is_taken_over_by_new_walks_not_single_gets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_bulk, "_STALL", 0.5)
    source, tree, root = _tree(20_000)
    kubo = _Refs(tree, stall_after=300)
    fetch = _Fetch(source)
    bulk = _refs_bulk(kubo, source, fetch)
    _moves_every_node_once(source, root, bulk)
    assert bulk.restarts >= 1 and kubo.walks >= 2
    assert fetch.asked == []  # the rest came through walks (sessions), none one by one


def test_a_block_no_walk_delivers_is_fetched_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bulk, "_STALL", 0.3)
    monkeypatch.setattr(_bulk, "_GIVE_UP", 1.0)
    source, tree, root = _tree(20_000)
    nodes = tree_delta(source, root).added
    missing = nodes[len(nodes) // 2]
    kubo = _Refs(tree, stall_after=None, never=frozenset({missing}))
    fetch = _Fetch(source)
    bulk = _refs_bulk(kubo, source, fetch)
    _moves_every_node_once(source, root, bulk)
    assert missing in fetch.asked
    assert len(fetch.asked) <= _bulk._BATCH  # only what the walks owed when they gave up
