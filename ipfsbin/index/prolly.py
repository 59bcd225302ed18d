"""A prolly tree: an ordered map from string keys to DAG-CBOR values, stored as blocks.

Node boundaries depend only on keys (see ``schema/index.md``), so a set of
entries has exactly one tree whatever order or history produced it: equal sets
have equal roots, and a change rewrites only the nodes around it.

A :class:`ProllyTree` is a reader and writer bound to a block store, holding a
small LRU of decoded nodes; its methods take root CIDs, so one object serves
every version of an index and versions share cached nodes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import SchemaError
from ipfsbin.index._chunker import (
    Chunker,
    Closed,
    NodeCache,
    Payload,
    Writer,
    build_levels,
    check_key,
)
from ipfsbin.index._node import (
    DEFAULT_PARAMS,
    ChunkParams,
    Node,
    decode_node,
    encode_node,
)
from ipfsbin.store.base import BlockStore

__all__ = ["ProllyTree", "TreeStats", "build", "empty_root"]

_DELETE: Final = object()
_EMPTY_LEAF: Final = encode_node(0, [])


@dataclass(frozen=True, kw_only=True)
class TreeStats:
    count: int
    depth: int
    blocks: int
    bytes: int


def empty_root(store: BlockStore) -> CID:
    """Store the empty tree (an empty leaf) and return its CID."""
    return store.put(_EMPTY_LEAF, DAG_CBOR)


def build(
    store: BlockStore,
    sorted_entries: Iterable[tuple[str, dagcbor.Value]],
    *,
    params: ChunkParams = DEFAULT_PARAMS,
) -> CID:
    """Write the tree of ``sorted_entries`` (strictly increasing keys) and return its root."""
    return ProllyTree(store, params=params, cache_size=0).build(sorted_entries)


class ProllyTree:
    """Reads and writes prolly trees in ``store``; methods take the root to work on."""

    def __init__(
        self,
        store: BlockStore,
        *,
        cache_size: int = 256,
        params: ChunkParams = DEFAULT_PARAMS,
        checked: bool = False,
    ) -> None:
        """``checked``: every node this tree reads was decoded strictly before
        (see :func:`~ipfsbin.index._node.decode_node`)."""
        self.store = store
        self.params = params
        self._cache = NodeCache(cache_size)
        self._checked = checked

    # -- reading --------------------------------------------------------------

    def load(self, cid: CID) -> Node:
        """The decoded node ``cid`` (from the cache when there)."""
        node = self._cache.get(cid)
        if node is None:
            node = decode_node(cid, self.store.get(cid), self.params, checked=self._checked)
            self._cache.put(node)
        return node

    def child(self, parent: Node, index: int) -> Node:
        """Child ``index`` of ``parent``, checked against what the parent says about it."""
        node = self.load(parent.children[index])
        problem = _child_problem(parent, index, node)
        if problem is not None:
            # Formatting CIDs as text is slow; only a failing check pays for it.
            where = f"child {index} ({node.cid}) of index node {parent.cid}"
            raise SchemaError(f"{where} {problem}")
        return node

    def get(self, root: CID, key: str, default: dagcbor.Value = None) -> dagcbor.Value:
        """The value under ``key``, or ``default``."""
        node = self.load(root)
        while node.level > 0:
            index = bisect_left(node.keys, key)
            if index == len(node.keys):
                return default
            node = self.child(node, index)
        index = bisect_left(node.keys, key)
        if index < len(node.keys) and node.keys[index] == key:
            return node.values[index]
        return default

    def has(self, root: CID, key: str) -> bool:
        missing = object()
        return self.get(root, key, missing) is not missing

    def scan(self, root: CID, prefix: str = "") -> Iterator[tuple[str, dagcbor.Value]]:
        """Entries whose key starts with ``prefix``, in key order, reading only their nodes."""
        for key, value in self._from(self.load(root), prefix):
            if not key.startswith(prefix):
                return
            yield key, value

    def items(self, root: CID) -> Iterator[tuple[str, dagcbor.Value]]:
        return self.scan(root, "")

    def _from(self, node: Node, start: str) -> Iterator[tuple[str, dagcbor.Value]]:
        index = bisect_left(node.keys, start)
        if node.level == 0:
            for position in range(index, len(node.keys)):
                yield node.keys[position], node.values[position]
            return
        for position in range(index, len(node.keys)):
            yield from self._from(self.child(node, position), start)

    def count(self, root: CID) -> int:
        return self.load(root).count

    def stats(self, root: CID) -> TreeStats:
        """Entries, levels, blocks and bytes of the whole tree (reads every node)."""
        top = self.load(root)
        blocks = 0
        size = 0
        stack = [top]
        while stack:
            node = stack.pop()
            blocks += 1
            size += node.size
            if node.level > 0:
                stack.extend(self.child(node, i) for i in range(len(node.keys)))
        return TreeStats(count=top.count, depth=top.level + 1, blocks=blocks, bytes=size)

    # -- writing --------------------------------------------------------------

    def empty(self) -> CID:
        return empty_root(self.store)

    def build(self, sorted_entries: Iterable[tuple[str, dagcbor.Value]]) -> CID:
        """Write the tree of ``sorted_entries`` (strictly increasing keys); return its root."""
        writer = Writer(self.store, None)
        params = self.params
        root = build_levels(0, sorted_entries, params, writer, lambda k: check_key(k, params))
        writer.flush()
        return root if root is not None else self.empty()

    def mutate(
        self,
        root: CID,
        upserts: Mapping[str, dagcbor.Value],
        deletes: Iterable[str] = (),
    ) -> CID:
        """Apply a batch of changes to ``root``; the new root equals a fresh build of the result.

        Deleting an absent key does nothing. Only the nodes around each change
        are read and rewritten (about changes x depth blocks).
        """
        changes: dict[str, Payload] = {}
        for key in deletes:
            check_key(key, self.params)
            changes[key] = _DELETE
        for key, value in upserts.items():
            check_key(key, self.params)
            if key in changes:
                raise ValueError(f"key {key!r} is both upserted and deleted")
            changes[key] = value
        if not changes:
            return root
        top = self.load(root)
        writer = Writer(self.store, self._cache)
        pending = sorted(changes.items())
        level = 0
        while level < top.level:
            pending = _parent_changes(self._rechunk(top, level, pending, writer))
            writer.flush()
            if not pending:
                return root
            level += 1
        ((_, new_nodes),) = self._rechunk(top, top.level, pending, writer)
        if len(new_nodes) > 1:
            items = [(n.key, (n.cid, n.entries)) for n in new_nodes]
            new_root = build_levels(top.level + 1, items, self.params, writer, None)
            writer.flush()
            return new_root if new_root is not None else self.empty()
        writer.flush()
        if not new_nodes:
            return self.empty()
        node = self.load(new_nodes[0].cid)
        # A level with a single node is the top: drop one-child nodes above it.
        while node.level > 0 and len(node.keys) == 1:
            node = self.child(node, 0)
        return node.cid

    def _seek(self, top: Node, key: str, level: int) -> tuple[list[tuple[Node, int]], Node]:
        """The node at ``level`` whose key range holds ``key`` (the last one if past the end)."""
        stack: list[tuple[Node, int]] = []
        node = top
        while node.level > level:
            index = min(bisect_left(node.keys, key), len(node.keys) - 1)
            stack.append((node, index))
            node = self.child(node, index)
        return stack, node

    def _next(self, stack: list[tuple[Node, int]], level: int) -> Node | None:
        """The node after the one ``stack`` leads to, at the same level; None at the end."""
        while stack:
            parent, index = stack.pop()
            if index + 1 < len(parent.keys):
                stack.append((parent, index + 1))
                node = self.child(parent, index + 1)
                while node.level > level:
                    stack.append((node, 0))
                    node = self.child(node, 0)
                return node
        return None

    def _rechunk(
        self,
        top: Node,
        level: int,
        changes: list[tuple[str, Payload]],
        writer: Writer,
    ) -> list[tuple[list[Node], list[Closed]]]:
        """Re-chunk ``level`` around ``changes``: per window, the old nodes and their replacements.

        A window starts at the old node holding the first change not yet
        applied (the chunker starts afresh at every node boundary) and ends
        where a new node closes on the last entry of an old node with no
        change pending before it: from there on both chunkings agree.
        """
        windows: list[tuple[list[Node], list[Closed]]] = []
        position, total = 0, len(changes)
        while position < total:
            stack, node = self._seek(top, changes[position][0], level)
            chunker = Chunker(level, self.params, writer)
            old_nodes = [node]
            new_nodes: list[Closed] = []

            def push(
                key: str,
                payload: Payload,
                chunker: Chunker = chunker,
                new_nodes: list[Closed] = new_nodes,
            ) -> None:
                done = chunker.push(key, payload)
                if done is not None:
                    new_nodes.append(done)

            while True:
                synced = False
                last = len(node.keys) - 1
                for index, key in enumerate(node.keys):
                    while position < total and changes[position][0] < key:
                        change_key, change = changes[position]
                        position += 1
                        if change is not _DELETE:
                            push(change_key, change)
                    kept = True
                    if position < total and changes[position][0] == key:
                        change = changes[position][1]
                        position += 1
                        if change is _DELETE:
                            kept = False
                        else:
                            push(key, change)
                    else:
                        push(key, node.payload(index))
                    if index == last:
                        synced = kept and chunker.empty
                if synced and position >= total:
                    break
                following = self._next(stack, level)
                if synced and following is not None:
                    break
                if following is None:
                    for change_key, change in changes[position:]:
                        if change is not _DELETE:
                            push(change_key, change)
                    position = total
                    done = chunker.finish()
                    if done is not None:
                        new_nodes.append(done)
                    break
                node = following
                old_nodes.append(node)
            windows.append((old_nodes, new_nodes))
        return windows


def _child_problem(parent: Node, index: int, node: Node) -> str | None:
    """What is wrong with ``node`` as child ``index`` of ``parent``, or None."""
    if node.level != parent.level - 1:
        return f"is at level {node.level}, expected {parent.level - 1}"
    if not node.keys:
        return "is empty; only a root may be empty"
    if node.keys[-1] != parent.keys[index]:
        return f"ends at {node.keys[-1]!r}, the parent says {parent.keys[index]!r}"
    if node.count != parent.counts[index]:
        return f"holds {node.count} entries, the parent says {parent.counts[index]}"
    if index > 0 and node.keys[0] <= parent.keys[index - 1]:
        return f"starts at {node.keys[0]!r}, not after its left sibling"
    return None


def _parent_changes(
    windows: list[tuple[list[Node], list[Closed]]],
) -> list[tuple[str, Payload]]:
    """What the level above must change: old children out, new ones in, same ones left alone."""
    out: dict[str, Payload] = {}
    for old_nodes, new_nodes in windows:
        old = {node.keys[-1]: node.cid for node in old_nodes}
        for key in old:
            out[key] = _DELETE
        for closed in new_nodes:
            if old.get(closed.key) == closed.cid:
                del out[closed.key]
            else:
                out[closed.key] = (closed.cid, closed.entries)
    return sorted(out.items())
