"""Building prolly tree nodes: chunkers per level, the batched writer, the node cache.

Node boundaries depend only on keys (``schema/index.md``): each level's
:class:`Chunker` closes a node where a key's hash says so, and
:func:`build_levels` stacks the levels until one node is left, the root.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Final, NamedTuple, TypeAlias

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import IndexOperationError
from ipfsbin.index._node import (
    ChunkParams,
    Node,
    boundary_zeros,
    encode_node,
)
from ipfsbin.store.base import BlockStore

__all__ = ["Chunker", "Closed", "NodeCache", "Payload", "Writer", "build_levels", "check_key"]

_WRITE_BATCH: Final = 256

Payload: TypeAlias = Any
"""A leaf value (data-model value) or, above the leaves, a ``(child CID, count)`` pair."""


class Closed(NamedTuple):
    """A node just written: what its parent records about it."""

    key: str
    cid: CID
    entries: int


class NodeCache:
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


class Writer:
    """Buffers new blocks and hands them to the store in batches."""

    def __init__(self, store: BlockStore, cache: NodeCache | None) -> None:
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


class Chunker:
    """Cuts one level's entry sequence into nodes by the boundary rule."""

    def __init__(self, level: int, params: ChunkParams, writer: Writer) -> None:
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

    def push(self, key: str, payload: Payload) -> Closed | None:
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

    def finish(self) -> Closed | None:
        return self._close() if self._keys else None

    def _close(self) -> Closed:
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
        return Closed(keys[-1], cid, node.count)


def check_key(key: object, params: ChunkParams) -> None:
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


def build_levels(
    level: int,
    items: Iterable[tuple[str, Payload]],
    params: ChunkParams,
    writer: Writer,
    check: Callable[[str], None] | None,
) -> CID | None:
    """Chunk ``items`` at ``level`` and every level above it; the root, or None if no items."""
    chunkers: list[Chunker] = [Chunker(level, params, writer)]
    firsts: list[Closed] = []
    emitted: list[int] = [0]

    def closed(depth: int, node: Closed) -> None:
        # The first node of a level waits: if it stays alone it is the root.
        emitted[depth] += 1
        if emitted[depth] == 1:
            firsts.append(node)
            return
        if emitted[depth] == 2:
            chunkers.append(Chunker(level + depth + 1, params, writer))
            emitted.append(0)
            push(depth + 1, firsts[depth])
        push(depth + 1, node)

    def push(depth: int, node: Closed) -> None:
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
