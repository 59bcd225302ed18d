"""tree_delta under a KeyScope (partial replicas) and with a bulk prefetch."""

from __future__ import annotations

import random

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.index.scope import KeyScope
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import tree_delta

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
    def __init__(self) -> None:
        self.calls: list[tuple[CID, int]] = []

    def subtree(self, cid: CID, depth: int) -> None:
        self.calls.append((cid, depth))


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


def test_prefetch_is_asked_once_per_subtree_wholly_in_scope() -> None:
    rng = random.Random(5)
    source = MemoryBlockStore()
    tree = ProllyTree(source)
    # one platform with most of the builds: wide enough for whole subtrees of its own
    root = tree.build(_items(rng, 40_000, PLATFORMS[:1] * 20 + PLATFORMS))
    full = _Recorder()
    tree_delta(source, root, prefetch=full)
    assert full.calls == [(root, tree.load(root).level)]
    part = _Recorder()
    scope = KeyScope.of_platforms(PLATFORMS[:3])
    tree_delta(source, root, scope=scope, prefetch=part)
    assert part.calls
    for cid, depth in part.calls:
        node = tree.load(cid)
        assert node.level == depth >= 1
        assert all(scope.holds(k) for k in node.keys)
    again = _Recorder()
    tree_delta(source, root, root, prefetch=again)
    assert again.calls == []
