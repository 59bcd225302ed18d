"""tree_delta under a KeyScope (partial replicas) and with a bulk mover."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.index._node import Node
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.index.scope import KeyScope
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import Moved, tree_delta

PLATFORMS = [f"p{i:02d}" for i in range(10)]


def _items(
    rng: random.Random, n: int, platforms: list[str] = PLATFORMS
) -> list[tuple[str, dagcbor.Value]]:
    keys = {f"{rng.choice(platforms)}/cat-{rng.randrange(50)}/pkg/{i}" for i in range(n)}
    return sorted((k, {"v": k}) for k in keys)


def _copy(source: MemoryBlockStore, cids: tuple[CID, ...]) -> MemoryBlockStore:
    out = MemoryBlockStore()
    out.put_many((c, source.get(c)) for c in cids)
    return out


class _Recorder:
    """A Bulk over an in-memory store: every node under the tops, checked against its parent."""

    def __init__(self, source: MemoryBlockStore) -> None:
        self.tree = ProllyTree(source)
        self.calls: list[list[CID]] = []

    def below(self, tops: Sequence[Node]) -> Moved:
        self.calls.append([top.cid for top in tops])
        moved: list[CID] = []
        size = 0
        level = list(tops)
        while level and level[0].level > 0:
            level = [self.tree.child(n, i) for n in level for i in range(len(n.children))]
            moved += [n.cid for n in level]
            size += sum(len(self.tree.store.get(n.cid)) for n in level)
        return Moved(cids=tuple(moved), bytes=size)


def test_partial_delta_holds_exactly_the_scope_and_the_paths() -> None:
    rng = random.Random(3)
    source = MemoryBlockStore()
    tree = ProllyTree(source)
    items = _items(rng, 40_000)
    root = tree.build(items)
    scope = KeyScope.of_platforms(PLATFORMS[:2])
    full = tree_delta(source, root)
    part = tree_delta(source, root, scope=scope)
    assert len(part.added) < len(full.added) / 3
    held = ProllyTree(_copy(source, part.added))
    kept = [(k, v) for k, v in items if scope.holds(k)]
    for prefix in scope.prefixes or ():
        assert list(held.scan(root, prefix)) == [(k, v) for k, v in kept if k.startswith(prefix)]


def test_partial_update_elsewhere_adds_only_internal_nodes() -> None:
    rng = random.Random(4)
    source = MemoryBlockStore()
    tree = ProllyTree(source)
    root = tree.build(_items(rng, 40_000))
    scope = KeyScope.of_platforms(PLATFORMS[:2])
    old = tree_delta(source, root, scope=scope)
    local = _copy(source, old.added)
    changed = tree.mutate(root, {f"{PLATFORMS[7]}/cat-1/pkg/new{i}": {"v": i} for i in range(50)})
    delta = tree_delta(source, changed, root, old_store=local, scope=scope)
    assert delta.added and len(delta.added) <= 3  # the root and the nodes above the change
    for cid in delta.added:
        assert tree.load(cid).level > 0


def test_bulk_gets_the_highest_subtrees_wholly_in_scope_and_the_same_nodes() -> None:
    rng = random.Random(5)
    source = MemoryBlockStore()
    tree = ProllyTree(source)
    # one platform with most of the builds: wide enough for whole subtrees of its own
    root = tree.build(_items(rng, 40_000, PLATFORMS[:1] * 20 + PLATFORMS))
    full = _Recorder(source)
    walked = tree_delta(source, root)
    bulked = tree_delta(source, root, bulk=full)
    assert full.calls == [[root]]
    assert sorted(bulked.added) == sorted(walked.added)
    assert bulked.added_bytes == walked.added_bytes
    assert bulked.moved_blocks == len(walked.added) - 1 and bulked.moved_bytes > 0
    part = _Recorder(source)
    scope = KeyScope.of_platforms(PLATFORMS[:3])
    bulked = tree_delta(source, root, scope=scope, bulk=part)
    assert part.calls
    assert sorted(bulked.added) == sorted(tree_delta(source, root, scope=scope).added)
    for tops in part.calls:
        nodes = [tree.load(cid) for cid in tops]
        assert len({node.level for node in nodes}) == 1
        for node in nodes:
            assert node.level >= 1
            assert all(scope.holds(k) for k in node.keys)
    again = _Recorder(source)
    tree_delta(source, root, root, bulk=again)
    assert again.calls == []
