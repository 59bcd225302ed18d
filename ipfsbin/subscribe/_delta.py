"""Which index nodes a new head adds and which it drops, reading only those.

Both trees are walked level by level from the top. At each level a node is
opened only if its CID is on one side and not the other: a subtree present in
both trees is passed over unread, because a node that sits under an unchanged
parent in one tree sits under the same parent in the other. So the nodes
opened on the new side are exactly the blocks the follower lacks, and the
nodes opened on the old side exactly the ones it may let go.

Blocks of one level are fetched concurrently: over Kubo each fetch is a
bitswap round trip, and a change of a thousand entries touches hundreds of
leaves.

A partial replica (a :class:`~ipfsbin.index.scope.KeyScope` of some
platforms) opens a child only if its key range touches the scope; the
nodes on the paths to the kept ranges are opened, the rest never fetched.

When there is no old tree (a first sync, or the old nodes are gone), the
highest new nodes whose whole key range lies in the scope are checked by the
walk and handed, a level's chunk at a time, to a :class:`Bulk`: it moves
everything under them at once (Kubo's ``refs`` with a depth bound,
:mod:`._bulk`) and checks each node against its parent as the walk would, so
the walk does not open their children itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import SchemaError
from ipfsbin.index._node import Node
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.index.scope import EVERYTHING, KeyScope
from ipfsbin.kubo.netlimits import within_operation
from ipfsbin.store.base import BlockStore
from ipfsbin.store.memory import MemoryBlockStore

__all__ = ["Bulk", "Moved", "TreeDelta", "tree_delta"]

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class Moved:
    """The checked nodes under some subtree tops (not the tops themselves), and their bytes."""

    cids: tuple[CID, ...]
    bytes: int


class Bulk(Protocol):
    """Fetches every node under ``tops`` (checked nodes of one level >= 1), each checked
    against its parent; raises as the walk would on a node that fails a check."""

    def below(self, tops: Sequence[Node]) -> Moved: ...


@dataclass(frozen=True, kw_only=True)
class TreeDelta:
    """Index nodes only in the new tree (``added``) and only in the old one (``removed``)."""

    added: tuple[CID, ...]
    removed: tuple[CID, ...]
    added_bytes: int
    moved_blocks: int = 0
    """Of ``added``, the nodes a :class:`Bulk` fetched (the others came one by one)."""
    moved_bytes: int = 0


class _Loader:
    """Fetches a batch of blocks concurrently, then decodes them through a ProllyTree."""

    def __init__(self, store: BlockStore, workers: int) -> None:
        self._store = store
        self._workers = workers
        self._blocks = MemoryBlockStore()
        # the tree reads from the prefetched blocks; it checks children against parents
        self.tree = ProllyTree(self._blocks, cache_size=0)
        self.bytes = 0

    def prefetch(self, cids: Iterable[CID]) -> None:
        wanted = [c for c in cids if not self._blocks.has(c)]
        if not wanted:
            return
        if len(wanted) == 1 or self._workers == 1:
            found = [self._store.get(c) for c in wanted]
        else:
            with ThreadPoolExecutor(max_workers=self._workers) as pool:
                found = list(pool.map(within_operation(self._store.get), wanted))
        self.bytes += sum(len(data) for data in found)
        self._blocks.put_many(zip(wanted, found, strict=True))

    def forget(self, cids: Iterable[CID]) -> None:
        self._blocks.discard(cids)


_CHUNK = 512
"""Nodes of one level fetched and checked at a time: the walk holds at most this many
blocks (a few MB), whatever the size of the index."""


def _chunks(items: list[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# (parent, position) or None for a root; the lower end of the node's key range
# (exclusive, None: unbounded); whether the range lies wholly in the scope
_Ref = tuple[tuple[Node, int] | None, str | None, bool]


def tree_delta(
    store: BlockStore,
    new_root: CID,
    old_root: CID | None = None,
    *,
    old_store: BlockStore | None = None,
    workers: int = 8,
    scope: KeyScope = EVERYTHING,
    bulk: Bulk | None = None,
) -> TreeDelta:
    """Nodes of the index ``new_root`` missing from ``old_root`` (all of them without one).

    New nodes come from ``store`` (a fetching store), old ones from
    ``old_store`` (default: ``store``). Every new node is checked against what
    its parent says about it (level, last key, count). Only nodes whose key
    range touches ``scope`` are opened (the old tree is assumed to have been
    kept under the same scope). ``bulk`` is used only without an old tree.
    """
    if new_root.codec != DAG_CBOR:
        raise SchemaError(f"index root {new_root} is not a dag-cbor block")
    if new_root == old_root:
        return TreeDelta(added=(), removed=(), added_bytes=0)
    new_side = _Loader(store, workers)
    old_side = _Loader(old_store or store, workers)
    new_side.prefetch([new_root])
    top_new = new_side.tree.load(new_root)
    if old_root is not None:
        bulk = None
    new_levels: dict[int, dict[CID, _Ref]] = {
        top_new.level: {new_root: (None, None, scope.everything)}
    }
    old_levels: dict[int, dict[CID, str | None]] = {}
    top = top_new.level
    if old_root is not None:
        old_side.prefetch([old_root])
        top_old = old_side.tree.load(old_root)
        old_levels[top_old.level] = {old_root: None}
        top = max(top, top_old.level)
    added: list[CID] = []
    removed: list[CID] = []
    moved_blocks = moved_bytes = 0
    for level in range(top, -1, -1):
        fresh = new_levels.get(level, {})
        stale = old_levels.get(level, {})
        grown = [(cid, ref) for cid, ref in fresh.items() if cid not in stale]
        dropped = [cid for cid in stale if cid not in fresh]
        added.extend(cid for cid, _ in grown)
        removed.extend(dropped)
        below_new = new_levels.setdefault(level - 1, {})
        for chunk in _chunks(grown):
            new_side.prefetch(cid for cid, _ in chunk)
            tops: list[Node] = []
            for cid, (ref, after, covered) in chunk:
                node = new_side.tree.load(cid) if ref is None else new_side.tree.child(*ref)
                if node.level != level:
                    raise SchemaError(
                        f"index node {cid} is at level {node.level}, expected {level}"
                    )
                if bulk is not None and covered and level > 0:
                    tops.append(node)  # everything under it is kept: moved in bulk below
                    continue
                for position, child in enumerate(node.children):
                    lower = after if position == 0 else node.keys[position - 1]
                    if not scope.touches(lower, node.keys[position]):
                        continue
                    held = covered or scope.covers(lower, node.keys[position])
                    below_new[child] = ((node, position), lower, held)
            new_side.forget(cid for cid, _ in chunk)
            if bulk is not None and tops:
                moved = bulk.below(tops)
                added.extend(moved.cids)
                moved_blocks += len(moved.cids)
                moved_bytes += moved.bytes
        new_levels.pop(level, None)  # the parents stay alive through their children's refs only
        if level == 0:
            break  # dropped leaves are released unread
        below_old = old_levels.setdefault(level - 1, {})
        for old_chunk in _chunks(dropped):
            old_side.prefetch(old_chunk)
            for cid in old_chunk:
                node = old_side.tree.load(cid)
                for position, child in enumerate(node.children):
                    lower = stale[cid] if position == 0 else node.keys[position - 1]
                    if scope.touches(lower, node.keys[position]):
                        below_old[child] = lower
            old_side.forget(old_chunk)
    return TreeDelta(
        added=tuple(added),
        removed=tuple(removed),
        added_bytes=new_side.bytes + moved_bytes,
        moved_blocks=moved_blocks,
        moved_bytes=moved_bytes,
    )
