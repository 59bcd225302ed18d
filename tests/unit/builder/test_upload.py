"""Removing a file publish added and then refused: which blocks, and what Kubo keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from ipfsbin.builder._upload import adder_directory, dag_pb_links, remove_added_file
from ipfsbin.codec.cid import CID, DAG_PB, RAW, cid_for
from ipfsbin.codec.varint import encode_varint
from ipfsbin.errors import CodecError, KuboCommandError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.records import AddResult


def _field(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(value)) + value


def _node(links: Sequence[CID]) -> bytes:
    """A dag-pb file node as Kubo writes it: links (hash, empty name, tsize), then data."""
    body = b"".join(
        _field(2, _field(1, c.bytes) + _field(2, b"") + encode_varint(3 << 3) + encode_varint(9))
        for c in links
    )
    return body + _field(1, b"\x08\x02\x18\x80\x80\x40")


def _dag_pb(data: bytes) -> CID:
    return CID(bytes([1, DAG_PB]) + cid_for(RAW, data).multihash)


# Observed with Kubo 0.39.0: `add` (CIDv1, raw leaves, 1 MiB chunks) of a 10240-byte
# file and of a 10 MB one, and the extra block each add stored beside the file.
@pytest.mark.parametrize(
    ("root", "dag_size", "directory"),
    [
        (
            "bafkreig4hahhswrddwopxzs2eqgotd5flotzttm4schdrht7cpid4zg37a",
            10240,
            "bafkreihjvilsyr7qzpmn6ocz6urb76nwr2qxagnnor6ddph2gdznh6ffla",
        ),
        (
            "bafybeiduspao2htmv4a7o6pvuad7jd3y3h2tbangdanypaseh4aprc7neq",
            10015229,
            "bafkreidi4p3jnasvsns7kkxj4lii6xhfh5uq3ckcea36q2jggpo7tsqgie",
        ),
    ],
)
def test_adder_directory_matches_kubo(root: str, dag_size: int, directory: str) -> None:
    added = AddResult(cid=CID.from_text(root), name="", size=dag_size, dag_size=dag_size)
    assert str(adder_directory(added)) == directory


def test_dag_pb_links_in_order() -> None:
    leaves = [cid_for(RAW, bytes([i])) for i in range(3)]
    assert dag_pb_links(_node(leaves)) == leaves
    assert dag_pb_links(_field(1, b"\x08\x01")) == []


@pytest.mark.parametrize(
    "data", [b"\x12\x05\x0a", b"\x13\x00", _field(2, b"\x0a\x30" + b"\x01" * 4)]
)
def test_dag_pb_links_rejects_malformed_nodes(data: bytes) -> None:
    with pytest.raises(CodecError):
        dag_pb_links(data)


class _FakeKubo:
    """The four calls remove_added_file makes, over an in-memory block store."""

    def __init__(self, blocks: dict[CID, bytes], pinned: set[CID]) -> None:
        self.blocks = blocks
        self.pinned = pinned  # blocks some pin needs: block rm refuses them

    def is_pinned(self, cid: CID, *, pin_type: str = "recursive") -> bool:
        return cid in self.pinned

    def block_get(self, cid: CID, *, offline: bool = False) -> bytes:
        assert offline, "removal must never fetch from the network"
        return self.blocks[cid]

    def block_rm(self, cids: Sequence[CID], *, force: bool = False) -> None:
        assert not force
        for cid in cids:
            if cid in self.pinned:
                raise KuboCommandError("block/rm", f"pinned: {cid}")
            if cid not in self.blocks:
                raise KuboCommandError("block/rm", f"{cid}: block not found")
            del self.blocks[cid]


def _added_tree() -> tuple[dict[CID, bytes], AddResult, list[CID]]:
    leaves = [cid_for(RAW, bytes([i]) * 10) for i in range(4)]
    inner = [_node(leaves[:2]), _node(leaves[2:])]
    inner_cids = [_dag_pb(n) for n in inner]
    root_data = _node(inner_cids)
    root = _dag_pb(root_data)
    added = AddResult(cid=root, name="", size=40, dag_size=400)
    blocks = {root: root_data, **dict(zip(inner_cids, inner, strict=True))}
    blocks |= {leaf: b"" for leaf in leaves}
    blocks[adder_directory(added)] = b"directory"
    return blocks, added, leaves


def test_removes_the_whole_tree_and_the_directory() -> None:
    blocks, added, _ = _added_tree()
    kubo = _FakeKubo(dict(blocks), set())
    remove_added_file(cast(KuboClient, kubo), added)
    assert kubo.blocks == {}


def test_keeps_blocks_a_pin_needs_and_removes_the_rest() -> None:
    blocks, added, leaves = _added_tree()
    kubo = _FakeKubo(dict(blocks), {leaves[1]})
    remove_added_file(cast(KuboClient, kubo), added)
    assert set(kubo.blocks) == {leaves[1]}


def test_a_pinned_file_is_left_alone() -> None:
    blocks, added, _ = _added_tree()
    kubo = _FakeKubo(dict(blocks), {added.cid})
    remove_added_file(cast(KuboClient, kubo), added)
    assert kubo.blocks == blocks


def test_errors_are_swallowed() -> None:
    blocks, added, _ = _added_tree()
    del blocks[added.cid]  # block_get fails: nothing can be listed, nothing removed
    kubo: Any = _FakeKubo(dict(blocks), set())
    kubo.block_get = lambda cid, offline=False: (_ for _ in ()).throw(
        KuboCommandError("block/get", "not found")
    )
    remove_added_file(cast(KuboClient, kubo), added)
    assert kubo.blocks == blocks
