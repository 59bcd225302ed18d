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
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeAlias

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import IndexOperationError, SchemaError
from ipfsbin.index._node import (
    DEFAULT_PARAMS,
    ChunkParams,
    Node,
    boundary_zeros,
    decode_node,
    encode_node,
)
from ipfsbin.store.base import BlockStore

__all__ = ["ProllyTree", "TreeStats", "build", "empty_root"]

_DELETE: Final = object()
_WRITE_BATCH: Final = 256
_EMPTY_LEAF: Final = encode_node(0, [])

Payload: TypeAlias = Any
"""A leaf value (data-model value) or, above the leaves, a ``(child CID, count)`` pair."""


class _Closed(NamedTuple):
    """A node just written: what its parent records about it."""

    key: str
    cid: CID
    entries: int


@dataclass(frozen=True, kw_only=True)
class TreeStats:
    count: int
    depth: int
    blocks: int
    bytes: int


class _Cache:
    """LRU of decoded nodes by CID."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._nodes: OrderedDict[CID, Node] = OrderedDict()

    def get(self, cid: CID) -> Node | None:
        node = self._nodes.get(cid)
        if node is not None:
            self._nodes.move_to_end(cid)
        return node

    def put(self, node: Node) -> None:
        if self._size <= 0:
            return
        self._nodes[node.cid] = node
        self._nodes.move_to_end(node.cid)
        while len(self._nodes) > self._size:
            self._nodes.popitem(last=False)

    def clear(self) -> None:
        self._nodes.clear()


class _Writer:
    """Buffers new blocks and hands them to the store in batches."""

    def __init__(self, store: BlockStore, cache: _Cache | None) -> None:
        self._store = store
        self._cache = cache
        self._blocks: list[tuple[CID, bytes]] = []
        self.written = 0

    def add(self, node: Node, data: bytes) -> None:
        self._blocks.append((node.cid, data))
        self.written += 1
        if self._cache is not None:
            self._cache.put(node)
        if len(self._blocks) >= _WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._blocks:
            self._store.put_many(self._blocks)
            self._blocks = []


class _Chunker:
    """Cuts one level's entry sequence into nodes by the boundary rule."""

    def __init__(self, level: int, params: ChunkParams, writer: _Writer) -> None:
        self._level = level
        self._params = params
        self._writer = writer
        self._threshold = params.threshold(level)
        self._keys: list[str] = []
        self._payloads: list[Payload] = []
        self._encoded: list[bytes] = []
        self._total = 0

    @property
    def empty(self) -> bool:
        return not self._keys

    def push(self, key: str, payload: Payload) -> _Closed | None:
        if self._level == 0:
            encoded = dagcbor.encode([key, payload])
        else:
            encoded = dagcbor.encode([key, payload[0], payload[1]])
        size = len(encoded)
        if size > self._params.max_node_bytes:
            raise IndexOperationError(
                f"entry {key!r} encodes to {size} bytes; "
                f"at most {self._params.max_node_bytes} fit in a node"
            )
        self._keys.append(key)
        self._payloads.append(payload)
        self._encoded.append(encoded)
        self._total += size
        if self._total >= self._params.max_node_bytes:
            return self._close()
        if len(self._keys) >= self._params.min_entries and (
            boundary_zeros(key.encode("utf-8")) >= self._threshold
        ):
            return self._close()
        return None

    def finish(self) -> _Closed | None:
        return self._close() if self._keys else None

    def _close(self) -> _Closed:
        data = encode_node(self._level, self._encoded)
        cid = cid_for(DAG_CBOR, data)
        keys = self._keys
        if self._level == 0:
            node = Node(
                cid=cid,
                level=0,
                keys=keys,
                values=self._payloads,
                children=[],
                counts=[],
                size=len(data),
            )
        else:
            pairs = self._payloads
            node = Node(
                cid=cid,
                level=self._level,
                keys=keys,
                values=[],
                children=[c for c, _ in pairs],
                counts=[n for _, n in pairs],
                size=len(data),
            )
        self._writer.add(node, data)
        self._keys, self._payloads, self._encoded, self._total = [], [], [], 0
        return _Closed(keys[-1], cid, node.count)


def _check_key(key: object, params: ChunkParams) -> None:
    if type(key) is not str:
        raise TypeError(f"index keys are strings, not {type(key).__name__}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError(f"key {key!r} is not valid Unicode text: {exc}") from exc
    if size > params.max_key_bytes:
        raise IndexOperationError(
            f"key of {size} bytes is longer than the {params.max_key_bytes} allowed"
        )


def _build_levels(
    level: int,
    items: Iterable[tuple[str, Payload]],
    params: ChunkParams,
    writer: _Writer,
    check: Callable[[str], None] | None,
) -> CID | None:
    """Chunk ``items`` at ``level`` and every level above it; the root, or None if no items."""
    chunkers: list[_Chunker] = [_Chunker(level, params, writer)]
    firsts: list[_Closed] = []
    emitted: list[int] = [0]

    def closed(depth: int, node: _Closed) -> None:
        # The first node of a level waits: if it stays alone it is the root.
        emitted[depth] += 1
        if emitted[depth] == 1:
            firsts.append(node)
            return
        if emitted[depth] == 2:
            chunkers.append(_Chunker(level + depth + 1, params, writer))
            emitted.append(0)
            push(depth + 1, firsts[depth])
        push(depth + 1, node)

    def push(depth: int, node: _Closed) -> None:
        done = chunkers[depth].push(node.key, (node.cid, node.entries))
        if done is not None:
            closed(depth, done)

    previous: str | None = None
    bottom = chunkers[0]
    for key, payload in items:
        if check is not None:
            check(key)
        if previous is not None and key <= previous:
            raise ValueError(
                f"entries must be sorted by key without repeats: {key!r} after {previous!r}"
            )
        previous = key
        done = bottom.push(key, payload)
        if done is not None:
            closed(0, done)
    depth = 0
    while True:
        done = chunkers[depth].finish()
        if done is not None:
            closed(depth, done)
        if emitted[depth] == 0:
            return None
        if emitted[depth] == 1:
            return firsts[depth].cid
        depth += 1


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
    ) -> None:
        self.store = store
        self.params = params
        self._cache = _Cache(cache_size)

    # -- reading --------------------------------------------------------------

    def load(self, cid: CID) -> Node:
        """The decoded node ``cid`` (from the cache when there)."""
        node = self._cache.get(cid)
        if node is None:
            node = decode_node(cid, self.store.get(cid), self.params)
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
        writer = _Writer(self.store, None)
        params = self.params
        root = _build_levels(0, sorted_entries, params, writer, lambda k: _check_key(k, params))
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
            _check_key(key, self.params)
            changes[key] = _DELETE
        for key, value in upserts.items():
            _check_key(key, self.params)
            if key in changes:
                raise ValueError(f"key {key!r} is both upserted and deleted")
            changes[key] = value
        if not changes:
            return root
        top = self.load(root)
        writer = _Writer(self.store, self._cache)
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
            new_root = _build_levels(top.level + 1, items, self.params, writer, None)
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
        writer: _Writer,
    ) -> list[tuple[list[Node], list[_Closed]]]:
        """Re-chunk ``level`` around ``changes``: per window, the old nodes and their replacements.

        A window starts at the old node holding the first change not yet
        applied (the chunker starts afresh at every node boundary) and ends
        where a new node closes on the last entry of an old node with no
        change pending before it: from there on both chunkings agree.
        """
        windows: list[tuple[list[Node], list[_Closed]]] = []
        position, total = 0, len(changes)
        while position < total:
            stack, node = self._seek(top, changes[position][0], level)
            chunker = _Chunker(level, self.params, writer)
            old_nodes = [node]
            new_nodes: list[_Closed] = []

            def push(
                key: str,
                payload: Payload,
                chunker: _Chunker = chunker,
                new_nodes: list[_Closed] = new_nodes,
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
    windows: list[tuple[list[Node], list[_Closed]]],
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
