"""UnixFS file nodes over dag-pb: links in order, inline data, and what is not a file."""

from __future__ import annotations

import pytest

from ipfsbin.codec.cid import CID, DAG_CBOR, DAG_PB, RAW, cid_for
from ipfsbin.codec.protobuf import bytes_field, varint_field
from ipfsbin.codec.unixfs import decode_dag_pb, decode_file_node
from ipfsbin.errors import CodecError


def pb_node(links: list[CID], unixfs: bytes | None) -> bytes:
    """A dag-pb node as Kubo writes it: links (hash, empty name, tsize), then data."""
    body = b"".join(
        bytes_field(2, bytes_field(1, c.bytes) + bytes_field(2, b"") + varint_field(3, 9))
        for c in links
    )
    return body + (b"" if unixfs is None else bytes_field(1, unixfs))


def unixfs(kind: int, data: bytes = b"", blocksizes: tuple[int, ...] = ()) -> bytes:
    out = varint_field(1, kind)
    if data:
        out += bytes_field(2, data)
    out += varint_field(3, len(data) + sum(blocksizes))
    return out + b"".join(varint_field(4, s) for s in blocksizes)


def test_a_raw_block_is_all_data() -> None:
    cid = cid_for(RAW, b"leaf")
    node = decode_file_node(cid, b"leaf")
    assert (node.data, node.children) == (b"leaf", ())


def test_a_file_node_has_inline_data_then_children_in_order() -> None:
    leaves = [cid_for(RAW, bytes([i])) for i in range(3)]
    block = pb_node(leaves, unixfs(2, b"head", (1, 1, 1)))
    cid = cid_for(DAG_PB, block)
    node = decode_file_node(cid, block)
    assert node.data == b"head" and node.children == tuple(leaves)
    assert decode_dag_pb(block).links == tuple(leaves)


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        (pb_node([], unixfs(1)), "directory"),
        (pb_node([], unixfs(5)), "HAMT shard"),
        (pb_node([], None), "no UnixFS data"),
        (bytes_field(2, bytes_field(2, b"name")), "0 hashes"),
        (bytes_field(1, b"\x08\x02") * 2, "Data twice"),
        (b"\x13\x00", "wire type"),
    ],
)
def test_what_is_not_a_file_is_refused(block: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        decode_file_node(cid_for(DAG_PB, block), block)


def test_other_codecs_are_not_file_blocks() -> None:
    with pytest.raises(CodecError, match="not a UnixFS file block"):
        decode_file_node(cid_for(DAG_CBOR, b"\xa0"), b"\xa0")
