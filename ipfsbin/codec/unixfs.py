"""UnixFS files over dag-pb: the nodes, and the file's bytes in order.

A UnixFS file is a ``raw`` block (its bytes are the file) or a ``dag-pb``
node ``PBNode {Links = 2 (PBLink {Hash = 1, Name = 2, Tsize = 3}), Data = 1}``
whose ``Data`` is a UnixFS message ``{Type = 1, Data = 2, filesize = 3,
blocksizes = 4, …}`` of type File (2) or Raw (0). The file's bytes are the
node's own ``Data`` followed by the bytes of each link in order, depth
first. This is as much of dag-pb and UnixFS as reading a file needs; the
blocks themselves are checked against their CIDs by whoever fetched them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ipfsbin.codec.cid import CID, DAG_PB, RAW
from ipfsbin.codec.protobuf import BYTES, VARINT, iter_fields
from ipfsbin.errors import CodecError

__all__ = ["DagPbNode", "FileNode", "decode_dag_pb", "decode_file_node"]

_UNIXFS_RAW: Final = 0
_UNIXFS_FILE: Final = 2
_TYPE_NAMES: Final = {1: "directory", 3: "metadata", 4: "symlink", 5: "HAMT shard"}


@dataclass(frozen=True, slots=True)
class DagPbNode:
    links: tuple[CID, ...]
    data: bytes | None
    """The node's ``Data`` field (for UnixFS: the UnixFS message); None when absent."""


@dataclass(frozen=True, slots=True)
class FileNode:
    """One block of a UnixFS file: bytes of its own, then its children's, in order."""

    data: bytes
    children: tuple[CID, ...]
    filesize: int | None = None
    """The UnixFS ``filesize`` the node states (its own bytes and its children's); None when
    absent. For a ``raw`` block, its length."""


def _bytes_fields(data: bytes, what: str) -> list[tuple[int, bytes]]:
    found = []
    for number, wire_type, value in iter_fields(data):
        if wire_type == VARINT:
            continue
        if wire_type != BYTES:
            raise CodecError(f"{what}: field {number} has wire type {wire_type}")
        assert isinstance(value, bytes)  # noqa: S101 - wire type 2 values are bytes
        found.append((number, value))
    return found


def decode_dag_pb(block: bytes) -> DagPbNode:
    """The links (in order) and data of a dag-pb node; ``CodecError`` if malformed."""
    links: list[CID] = []
    data: bytes | None = None
    for number, value in _bytes_fields(block, "dag-pb"):
        if number == 2:
            hashes = [v for n, v in _bytes_fields(value, "dag-pb link") if n == 1]
            if len(hashes) != 1:
                raise CodecError(f"dag-pb link has {len(hashes)} hashes, expected 1")
            links.append(CID(hashes[0]))
        elif number == 1:
            if data is not None:
                raise CodecError("dag-pb node has Data twice")
            data = value
    return DagPbNode(links=tuple(links), data=data)


def decode_file_node(cid: CID, block: bytes) -> FileNode:
    """The part of a UnixFS file that ``block`` (named ``cid``) holds; ``CodecError`` otherwise."""
    if cid.codec == RAW:
        return FileNode(data=block, children=(), filesize=len(block))
    if cid.codec != DAG_PB:
        raise CodecError(f"{cid} is {cid.codec_name}, not a UnixFS file block (raw or dag-pb)")
    node = decode_dag_pb(block)
    if node.data is None:
        raise CodecError(f"dag-pb node {cid} has no UnixFS data")
    kind: int | None = None
    inline = b""
    filesize: int | None = None
    for number, wire_type, value in iter_fields(node.data):
        if number == 1 and wire_type == VARINT:
            assert isinstance(value, int)  # noqa: S101 - VARINT values are ints
            kind = value
        elif number == 2 and wire_type == BYTES:
            assert isinstance(value, bytes)  # noqa: S101 - BYTES values are bytes
            inline = value
        elif number == 3 and wire_type == VARINT:
            assert isinstance(value, int)  # noqa: S101 - VARINT values are ints
            filesize = value
    if kind not in (_UNIXFS_FILE, _UNIXFS_RAW):
        name = _TYPE_NAMES.get(kind or -1, f"type {kind}")
        raise CodecError(f"UnixFS node {cid} is a {name}, not a file")
    return FileNode(data=inline, children=node.links, filesize=filesize)
