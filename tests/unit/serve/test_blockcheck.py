"""A binpkg's blocks checked one by one against their CIDs: no byte of a bad block goes out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from ipfsbin.codec.cid import CID, DAG_PB, RAW, cid_for
from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import TrustError
from ipfsbin.manifest import Manifest
from ipfsbin.serve.blockcheck import Checked, Missing, checked_blocks, same_start
from tests.unit.codec.test_unixfs import pb_node, unixfs
from tests.unit.maintainer.maintainer_helpers import PLATFORM, make_manifest

DESCRIPTOR = Descriptor(
    platform=PLATFORM.cid, cpv="app-misc/foo-1", slot="0", subslot="0", repository="gentoo",
    eapi="8", use=(), iuse=(), deps=(), requires=(),
)  # fmt: skip
LEAVES = [bytes([i]) * (100 + i) for i in range(6)]
DATA = b"".join(LEAVES)


class Dag:
    """root → (inner → leaves 0-2), leaves 3-5, held as a repo would: CID → block."""

    def __init__(self, leaves: list[bytes] = LEAVES, *, filesize: int | None = None) -> None:
        self.leaves = [cid_for(RAW, x) for x in leaves]
        self.blocks: dict[CID, bytes] = dict(zip(self.leaves, leaves, strict=True))
        sizes = tuple(len(x) for x in leaves)
        inner_block = pb_node(self.leaves[:3], unixfs(2, b"", sizes[:3]))
        self.inner = cid_for(DAG_PB, inner_block)
        self.blocks[self.inner] = inner_block
        root_sizes = (sum(sizes[:3]), *sizes[3:])
        root_unixfs = unixfs(2, b"", root_sizes)
        if filesize is not None:  # a root stating another size (field 3 again: the last counts)
            root_unixfs += bytes([3 << 3]) + bytes([filesize])
        root_block = pb_node([self.inner, *self.leaves[3:]], root_unixfs)
        self.root = cid_for(DAG_PB, root_block)
        self.blocks[self.root] = root_block
        self.reads: list[CID] = []

    def read(self, cid: CID) -> bytes:
        self.reads.append(cid)
        if cid not in self.blocks:
            raise Missing(f"no {cid}")
        return self.blocks[cid]

    def checked(self, data: bytes = DATA) -> Checked:
        manifest = make_manifest(DESCRIPTOR, data, binpkg=self.root)
        return Checked(manifest, manifest.to_block()[0])


def _walk(
    dag: Dag, *, end: int | None = None, ahead: int = 1, data: bytes = DATA
) -> tuple[list[bytes], list[tuple[int, bytes]], Exception | None]:
    given: list[tuple[int, bytes]] = []
    out: list[bytes] = []
    checked = dag.checked(data)
    parts = checked_blocks(
        checked, dag.read, dag.read, end=checked.manifest.size if end is None else end,
        ahead=lambda: ahead, given=given,
    )  # fmt: skip
    try:
        out.extend(parts)
    except (TrustError, Missing) as exc:
        return out, given, exc
    return out, given, None


@pytest.mark.parametrize("ahead", [1, 2, 4])
def test_the_whole_file_comes_out_in_leaves(ahead: int) -> None:
    out, given, failed = _walk(Dag(), ahead=ahead)
    assert failed is None
    assert out == LEAVES
    assert given == [(len(x), hashlib.sha256(x).digest()) for x in LEAVES]


def _altered(dag: Dag, cid: CID, change: Callable[[bytes], bytes]) -> Dag:
    dag.blocks[cid] = change(dag.blocks[cid])
    return dag


def _flip(data: bytes) -> bytes:
    return data[:10] + bytes([data[10] ^ 1]) + data[11:]


@pytest.mark.parametrize("ahead", [1, 4])
@pytest.mark.parametrize("leaf", [0, 2, 3, 5])
@pytest.mark.parametrize(
    "change",
    [_flip, lambda d: d[:-1], lambda d: d + b"x", lambda d: LEAVES[d == LEAVES[0]]],
    ids=["flipped", "truncated", "longer", "another-valid-block"],
)
def test_a_bad_leaf_stops_the_file_before_its_bytes(
    ahead: int, leaf: int, change: Callable[[bytes], bytes]
) -> None:
    dag = Dag()
    _altered(dag, dag.leaves[leaf], change)
    out, _, failed = _walk(dag, ahead=ahead)
    assert isinstance(failed, TrustError)
    assert "do not match manifest" in failed.message
    # the leaves before it, checked; hashed ahead, those still held are not given
    assert out == LEAVES[: len(out)] and len(out) <= leaf
    if ahead == 1:
        assert len(out) == leaf


@pytest.mark.parametrize("which", ["root", "inner"])
def test_a_tampered_node_stops_the_file_before_the_bytes_under_it(which: str) -> None:
    dag = Dag()
    _altered(dag, getattr(dag, which), _flip)
    out, _, failed = _walk(dag)
    assert isinstance(failed, TrustError) and "does not hash to it" in failed.message
    assert out == []


def test_a_root_stating_another_size_than_the_manifest_gives_nothing() -> None:
    out, _, failed = _walk(Dag(filesize=7))
    assert isinstance(failed, TrustError) and "states 7 bytes" in failed.message
    assert out == []


def test_a_walk_giving_fewer_bytes_than_stated_holds_its_last_part() -> None:
    """The blocks are all valid; the DAG gives fewer bytes than the manifest's size."""
    short = [*LEAVES[:5], LEAVES[5][:-3]]
    dag = Dag(short, filesize=None)
    # the manifest and the root both say the full size; the last leaf is short
    dag_data = b"".join(short) + b"xyz"
    root_unixfs = unixfs(2, b"", (sum(len(x) for x in short[:3]), *(len(x) for x in short[3:])))
    root_unixfs += bytes([3 << 3]) + _varint(len(dag_data))
    root_block = pb_node([dag.inner, *dag.leaves[3:]], root_unixfs)
    dag.root = cid_for(DAG_PB, root_block)
    dag.blocks[dag.root] = root_block
    out, _, failed = _walk(dag, data=dag_data)
    assert isinstance(failed, TrustError) and "the walk gives" in failed.message
    assert out == short[:5]  # the last part waited for the end of the walk


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_a_range_reads_no_block_past_its_end() -> None:
    dag = Dag()
    end = len(LEAVES[0]) + 5  # into leaf 1
    out, _, failed = _walk(dag, end=end)
    assert failed is None
    assert out == LEAVES[:2]
    assert dag.reads == [dag.root, dag.inner, dag.leaves[0], dag.leaves[1]]


@pytest.mark.parametrize("ahead", [1, 4])
def test_a_missing_block_comes_after_every_part_before_it(ahead: int) -> None:
    dag = Dag()
    del dag.blocks[dag.leaves[4]]
    out, given, failed = _walk(dag, ahead=ahead)
    assert isinstance(failed, Missing)
    assert out == LEAVES[:4]
    assert [g[0] for g in given] == [len(x) for x in LEAVES[:4]]


def _pieces(data: bytes, size: int = 37) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def test_a_stream_taking_over_must_start_with_the_parts_given() -> None:
    dag = Dag()
    given = [(len(x), hashlib.sha256(x).digest()) for x in LEAVES[:3]]
    assert b"".join(same_start(_pieces(DATA), given, dag.checked())) == DATA
    other = DATA[:150] + b"\0" + DATA[151:]  # a byte of leaf 1 differs
    out: list[bytes] = []
    with pytest.raises(TrustError, match="differ from the repo's checked block"):
        out.extend(same_start(_pieces(other), given, dag.checked()))
    assert sum(map(len, out)) <= len(LEAVES[0]) + len(LEAVES[1])


def test_a_single_raw_block_is_checked_whole() -> None:
    data = b"abc" * 1000
    manifest: Manifest = make_manifest(DESCRIPTOR, data)
    checked = Checked(manifest, manifest.to_block()[0])
    blocks = {manifest.binpkg: data[:-1] + b"d"}
    with pytest.raises(TrustError, match="does not hash to it"):
        list(checked_blocks(checked, blocks.__getitem__, blocks.__getitem__, end=len(data),
                            ahead=lambda: 1, given=[]))  # fmt: skip
    blocks = {manifest.binpkg: data}
    out = list(checked_blocks(checked, blocks.__getitem__, blocks.__getitem__, end=len(data),
                              ahead=lambda: 1, given=[]))  # fmt: skip
    assert out == [data]
