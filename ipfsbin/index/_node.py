"""Index nodes: the block format, the boundary rule, and strict decoding.

The rules implemented here are specified in ``schema/index.md``; that file is
the reference and this module follows it.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import SchemaError

__all__ = [
    "DEFAULT_PARAMS",
    "NODE_TYPE",
    "ChunkParams",
    "Node",
    "array_head",
    "boundary_zeros",
    "decode_node",
    "encode_node",
    "key_rank",
]

NODE_TYPE: Final = "ipfsbin/index-node/1"
_RANK_DOMAIN: Final = b"ipfsbin/index-node/1 boundary\x00"
_MAX_LEVEL: Final = 64
_FIELDS: Final = frozenset({"type", "level", "entries"})


@dataclass(frozen=True, kw_only=True)
class ChunkParams:
    """The knobs of the boundary rule; the defaults are the format, others are for tests.

    A key whose boundary hash starts with ``z`` zero bits closes a leaf when
    ``z >= leaf_bits`` and a node at level L >= 1 when ``z >= leaf_bits +
    branch_bits * L`` (see :meth:`threshold`). Leaves are narrow (4 bits: about
    16 entries) so that scattered changes rewrite little; internal nodes are
    wide (8 bits: about 256 children) so that lookups stay shallow.
    ``min_entries``: a boundary key closes a node only once the node holds this
    many entries (stops ground keys from making chains of one-entry nodes).
    ``max_node_bytes``: a node also closes once its entries' encodings add up to
    this many bytes; a single entry may not be larger (keeps blocks < 1 MiB).
    ``max_key_bytes``: the longest key, in UTF-8 bytes.
    """

    leaf_bits: int = 4
    branch_bits: int = 8
    min_entries: int = 4
    max_node_bytes: int = 256 * 1024
    max_key_bytes: int = 4096

    def __post_init__(self) -> None:
        if not 1 <= self.leaf_bits <= 16:
            raise ValueError(f"leaf_bits must be within 1..16, got {self.leaf_bits}")
        if not 1 <= self.branch_bits <= 16:
            raise ValueError(f"branch_bits must be within 1..16, got {self.branch_bits}")
        if self.min_entries < 1:
            raise ValueError(f"min_entries must be at least 1, got {self.min_entries}")
        if not 64 <= self.max_node_bytes <= 256 * 1024:
            raise ValueError(f"max_node_bytes must be within 64..262144, got {self.max_node_bytes}")
        if not 1 <= self.max_key_bytes <= 4096:
            raise ValueError(f"max_key_bytes must be within 1..4096, got {self.max_key_bytes}")

    def threshold(self, level: int) -> int:
        """Leading zero bits a key's boundary hash needs to close a node at ``level``."""
        return self.leaf_bits + self.branch_bits * level


DEFAULT_PARAMS: Final = ChunkParams()


def boundary_zeros(key_utf8: bytes) -> int:
    """Leading zero bits of the key's boundary hash (its first 8 bytes; 64 if all zero)."""
    head = hashlib.sha256(_RANK_DOMAIN + key_utf8).digest()[:8]
    return 64 - int.from_bytes(head, "big").bit_length()


def key_rank(key_utf8: bytes, params: ChunkParams = DEFAULT_PARAMS) -> int:
    """How many levels ``key`` is a boundary at: it closes nodes at levels below its rank.

    Thresholds rise with the level, so a key that closes a node at level L
    also closes one at every level below (the levels nest).
    """
    zeros = boundary_zeros(key_utf8)
    if zeros < params.leaf_bits:
        return 0
    return 1 + (zeros - params.leaf_bits) // params.branch_bits


def array_head(length: int) -> bytes:
    """The CBOR head of an array of ``length`` items (shortest form, as DAG-CBOR requires)."""
    if length < 24:
        return bytes([0x80 | length])
    if length < 0x100:
        return bytes([0x98, length])
    if length < 0x10000:
        return b"\x99" + struct.pack(">H", length)
    return b"\x9a" + struct.pack(">I", length)


_PREFIXES: dict[int, bytes] = {}


def encode_node(level: int, encoded_entries: list[bytes]) -> bytes:
    """The node block from entries already encoded one by one.

    Each entry is encoded once (its length decides where nodes close), so the
    node is put together from those bytes instead of being encoded again. The
    result is exactly ``dagcbor.encode(node)``; a unit test holds this.
    """
    prefix = _PREFIXES.get(level)
    if prefix is None:
        # Canonical map key order is by length: "type", "level", "entries".
        prefix = (
            b"\xa3"
            + dagcbor.encode("type")
            + dagcbor.encode(NODE_TYPE)
            + dagcbor.encode("level")
            + dagcbor.encode(level)
            + dagcbor.encode("entries")
        )
        _PREFIXES[level] = prefix
    return prefix + array_head(len(encoded_entries)) + b"".join(encoded_entries)


class Node:
    """A decoded node: sorted keys with values (leaf) or child links and counts (internal)."""

    __slots__ = ("children", "cid", "count", "counts", "keys", "level", "size", "values")

    def __init__(
        self,
        *,
        cid: CID,
        level: int,
        keys: list[str],
        values: list[dagcbor.Value],
        children: list[CID],
        counts: list[int],
        size: int,
    ) -> None:
        # A leaf fills ``values``; an internal node fills ``children`` and ``counts``.
        self.cid = cid
        self.level = level
        self.keys = keys
        self.values = values
        self.children = children
        self.counts = counts
        self.size = size
        self.count = len(keys) if level == 0 else sum(counts)

    def payload(self, index: int) -> dagcbor.Value:
        """What entry ``index`` holds: its value, or ``(child, count)`` above the leaves."""
        if self.level == 0:
            return self.values[index]
        return (self.children[index], self.counts[index])


def _bad(cid: CID, what: str) -> SchemaError:
    return SchemaError(f"index node {cid}: {what}")


def decode_node(
    cid: CID, data: bytes, params: ChunkParams = DEFAULT_PARAMS, *, checked: bool = False
) -> Node:
    """Decode and check one node block; ``SchemaError`` if it breaks a rule of the format.

    ``checked``: the block's bytes were decoded strictly before (its hash is
    still checked, and so is every rule below; only the DAG-CBOR canonical
    form is not proven again, see :func:`~ipfsbin.codec.dagcbor.decode_checked_block`).
    """
    if checked:
        value = dagcbor.decode_checked_block(cid, data)
    else:
        value = dagcbor.decode_block(cid, data)
    if not isinstance(value, dict):
        raise _bad(cid, f"expected a map, found {type(value).__name__}")
    if set(value) != _FIELDS:
        raise _bad(cid, f"expected fields {sorted(_FIELDS)}, found {sorted(value)}")
    if value["type"] != NODE_TYPE:
        raise _bad(cid, f"type is {value['type']!r}, expected {NODE_TYPE!r}")
    level = value["level"]
    if type(level) is not int or not 0 <= level <= _MAX_LEVEL:
        raise _bad(cid, f"level must be an integer within 0..{_MAX_LEVEL}, found {level!r}")
    entries = value["entries"]
    if type(entries) is not list:
        raise _bad(cid, f"entries must be a list, found {type(entries).__name__}")
    width = 2 if level == 0 else 3
    keys: list[str] = []
    values: list[dagcbor.Value] = []
    children: list[CID] = []
    counts: list[int] = []
    previous: str | None = None
    for position, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != width:
            raise _bad(cid, f"entry {position} must be a list of {width} items at level {level}")
        key = entry[0]
        if type(key) is not str:
            raise _bad(cid, f"entry {position} has a key of type {type(key).__name__}, not string")
        if len(key.encode("utf-8")) > params.max_key_bytes:
            raise _bad(cid, f"entry {position} has a key over {params.max_key_bytes} bytes")
        if previous is not None and key <= previous:
            raise _bad(cid, f"keys are not strictly increasing at entry {position} ({key!r})")
        previous = key
        keys.append(key)
        if level == 0:
            values.append(entry[1])
            continue
        child, count = entry[1], entry[2]
        if not isinstance(child, CID) or child.codec != DAG_CBOR:
            raise _bad(cid, f"entry {position} must link a dag-cbor child, found {child!r}")
        if type(count) is not int or count < 1:
            raise _bad(cid, f"entry {position} has count {count!r}, expected an integer >= 1")
        children.append(child)
        counts.append(count)
    if level > 0 and not keys:
        raise _bad(cid, f"an internal node (level {level}) must have at least one child")
    return Node(
        cid=cid,
        level=level,
        keys=keys,
        values=values,
        children=children,
        counts=counts,
        size=len(data),
    )
