"""Reading a UnixFS file out of a CAR in walk order: each block where the walk needs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipfsbin.codec.car import car_bytes
from ipfsbin.codec.cid import CID, DAG_PB, IDENTITY, RAW, cid_for
from ipfsbin.errors import BlockMismatchError, CodecError
from ipfsbin.store.gateway_file import _car_params, _walk_car, car_url, walk_file
from tests.unit.codec.test_unixfs import pb_node, unixfs


def _tree() -> tuple[CID, list[tuple[CID, bytes]], bytes]:
    """A two-level file: root → (inner → a, b), c, with the blocks in DFS order."""
    a, b, c = (cid_for(RAW, x) for x in (b"aa", b"bb", b"cc"))
    inner_block = pb_node([a, b], unixfs(2, b"", (2, 2)))
    inner = cid_for(DAG_PB, inner_block)
    root_block = pb_node([inner, c], unixfs(2, b"", (4, 2)))
    root = cid_for(DAG_PB, root_block)
    blocks = [(root, root_block), (inner, inner_block), (a, b"aa"), (b, b"bb"), (c, b"cc")]
    return root, blocks, b"aabbcc"


def _chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def test_a_dfs_car_gives_the_file() -> None:
    root, blocks, content = _tree()
    assert b"".join(_walk_car(root, _chunks(car_bytes([root], blocks)))) == content


def test_repeated_blocks_are_read_each_time() -> None:
    leaf = cid_for(RAW, b"zz")
    block = pb_node([leaf, leaf], unixfs(2, b"", (2, 2)))
    root = cid_for(DAG_PB, block)
    car = car_bytes([root], [(root, block), (leaf, b"zz"), (leaf, b"zz")])
    assert b"".join(_walk_car(root, _chunks(car))) == b"zzzz"


def test_identity_links_carry_their_bytes() -> None:
    inline = CID.v1(RAW, bytes([IDENTITY, 3]) + b"abc")
    leaf = cid_for(RAW, b"de")
    block = pb_node([inline, leaf], unixfs(2, b"", (3, 2)))
    root = cid_for(DAG_PB, block)
    car = car_bytes([root], [(root, block), (leaf, b"de")])
    assert b"".join(_walk_car(root, _chunks(car))) == b"abcde"


def test_a_block_out_of_place_stops_before_its_bytes() -> None:
    root, blocks, _ = _tree()
    swapped = [blocks[0], blocks[1], blocks[3], blocks[2], blocks[4]]
    out: list[bytes] = []
    with pytest.raises(BlockMismatchError, match="where the walk needs"):
        out.extend(_walk_car(root, _chunks(car_bytes([root], swapped))))
    assert out == []


def test_bytes_that_do_not_hash_to_their_cid_stop_the_walk() -> None:
    root, blocks, _ = _tree()
    car = bytearray(car_bytes([root], blocks))
    car[-1] ^= 1  # the last leaf
    out: list[bytes] = []
    with pytest.raises(BlockMismatchError):
        out.extend(_walk_car(root, _chunks(bytes(car))))
    assert b"".join(out) == b"aabb"


@pytest.mark.parametrize("cut", [3, 40, -1])
def test_a_car_cut_short_is_an_error(cut: int) -> None:
    root, blocks, content = _tree()
    car = car_bytes([root], blocks)
    with pytest.raises(CodecError):
        assert b"".join(_walk_car(root, _chunks(car[:cut]))) != content


def test_a_car_of_another_file_is_refused() -> None:
    root, blocks, _ = _tree()
    other = cid_for(RAW, b"other")
    with pytest.raises(BlockMismatchError, match="where the walk needs"):
        list(_walk_car(other, _chunks(car_bytes([other], blocks))))


def test_walk_file_asks_for_each_block_in_order() -> None:
    root, blocks, content = _tree()
    store = dict(blocks)
    asked: list[CID] = []

    def block(cid: CID) -> bytes:
        asked.append(cid)
        return store[cid]

    assert b"".join(walk_file(root, block)) == content
    assert asked == [c for c, _ in blocks]


def test_content_type_parameters() -> None:
    assert _car_params("application/vnd.ipld.car; version=1; order=dfs; dups=y") == {
        "version": "1",
        "order": "dfs",
        "dups": "y",
    }
    assert _car_params("application/vnd.ipld.car;version=1;order=DFS;dups=n")["order"] == "dfs"
    assert _car_params("application/vnd.ipld.raw; order=dfs") == {}
    assert _car_params(None) == {}


def test_car_url_asks_for_the_whole_file_in_walk_order() -> None:
    root, _, _ = _tree()
    url = car_url("http://gw", root)
    assert url.startswith(f"http://gw/ipfs/{root}?format=car&dag-scope=entity")
    assert "car-order=dfs" in url and "car-dups=y" in url
