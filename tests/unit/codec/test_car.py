"""CAR v1 writing and streaming reading, checked block by block."""

from __future__ import annotations

import io

import pytest

import ipfsbin.codec.car as car_module
from ipfsbin.codec import dagcbor
from ipfsbin.codec.car import CarHeader, car_bytes, import_car, iter_car, write_car
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.codec.varint import encode_varint
from ipfsbin.errors import BlockMismatchError, CodecError
from ipfsbin.store.memory import MemoryBlockStore

LEAF = b"leaf bytes"
LEAF_CID = cid_for(RAW, LEAF)
CHILD_CID, CHILD = dagcbor.encode_block({"leaf": LEAF_CID, "n": 1})
ROOT_CID, ROOT = dagcbor.encode_block({"child": CHILD_CID, "type": "test/1"})
BLOCKS = [(ROOT_CID, ROOT), (CHILD_CID, CHILD), (LEAF_CID, LEAF)]


def _section(cid: CID, data: bytes) -> bytes:
    return encode_varint(len(cid.bytes) + len(data)) + cid.bytes + data


def _header(value: object) -> bytes:
    raw = dagcbor.encode(value)
    return encode_varint(len(raw)) + raw


def test_public_names() -> None:
    assert sorted(car_module.__all__) == sorted(
        [
            "MAX_BLOCK_BYTES",
            "MAX_HEADER_BYTES",
            "CarHeader",
            "CarImport",
            "car_bytes",
            "import_car",
            "iter_car",
            "write_car",
        ]
    )


def test_layout_is_carv1() -> None:
    raw = car_bytes([ROOT_CID], BLOCKS)
    header = dagcbor.encode({"roots": [ROOT_CID], "version": 1})
    assert raw.startswith(encode_varint(len(header)) + header)
    assert raw.endswith(_section(LEAF_CID, LEAF))


def test_write_then_read_streams_the_same_blocks() -> None:
    out = io.BytesIO()
    written = write_car([ROOT_CID], iter(BLOCKS), out)
    assert written == len(out.getvalue())
    header, sections = iter_car(io.BytesIO(out.getvalue()))
    assert header == CarHeader(roots=(ROOT_CID,))
    assert list(sections) == BLOCKS


@pytest.mark.parametrize("chunk", [1, 3, 64, 10_000])
def test_reader_takes_chunks_of_any_size(chunk: int) -> None:
    raw = car_bytes([ROOT_CID], BLOCKS)
    header, sections = iter_car(raw[i : i + chunk] for i in range(0, len(raw), chunk))
    assert list(sections) == BLOCKS


def test_writer_refuses_blocks_that_do_not_match() -> None:
    with pytest.raises(BlockMismatchError):
        car_bytes([ROOT_CID], [(ROOT_CID, CHILD)])


def test_reader_refuses_a_block_that_does_not_match_its_cid() -> None:
    raw = _header({"roots": [ROOT_CID], "version": 1}) + _section(ROOT_CID, CHILD)
    _, sections = iter_car(raw)
    with pytest.raises(BlockMismatchError, match=str(ROOT_CID)):
        list(sections)


def test_blocks_before_a_bad_one_are_delivered() -> None:
    raw = _header({"roots": [ROOT_CID], "version": 1}) + _section(ROOT_CID, ROOT)
    raw += _section(CHILD_CID, ROOT)
    _, sections = iter_car(raw)
    assert next(sections) == (ROOT_CID, ROOT)
    with pytest.raises(BlockMismatchError):
        next(sections)


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ({"roots": [ROOT_CID], "version": 2}, "version is 2"),
        ({"roots": [ROOT_CID]}, "version is None"),
        ({"roots": [ROOT_CID], "version": "1"}, "version is '1'"),
        ({"roots": "x", "version": 1}, "list of CIDs"),
        ({"roots": [b"x"], "version": 1}, "list of CIDs"),
        ({"roots": [], "version": 1, "extra": 1}, "unknown fields"),
        ([1], "expected a map"),
    ],
)
def test_reader_refuses_bad_headers(header: object, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        iter_car(_header(header))


def test_carv2_gets_a_hint() -> None:
    pragma = bytes.fromhex("0aa16776657273696f6e02")
    with pytest.raises(CodecError, match="version is 2") as info:
        iter_car(pragma + bytes(40))
    assert info.value.hint and "CARv1" in info.value.hint


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "truncated before the header length"),
        (b"\x00", "header length 0"),
        (encode_varint(2**21), "header length"),
        (b"\x80", "bad the header length"),
        (b"\x10\xa2", "truncated in the header"),
        (bytes.fromhex("0200f6"), "not DAG-CBOR"),
    ],
)
def test_reader_refuses_broken_headers(raw: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        iter_car(raw)


def test_reader_refuses_broken_sections() -> None:
    head = _header({"roots": [ROOT_CID], "version": 1})
    cases = {
        "truncated": (head + _section(ROOT_CID, ROOT)[:-1], "truncated in a section"),
        "zero length": (head + b"\x00", "outside 1.."),
        "oversized": (head + encode_varint(3 * 1024 * 1024) + bytes(10), "outside 1.."),
        "bad varint": (head + b"\xff\xff", "bad a section length"),
        "bad cid": (head + encode_varint(5) + b"\x02\x71\x12\x20\x00", "bad CID"),
        "cid longer than section": (
            head + encode_varint(6) + b"\x01\x71\x12\x20\x00\x00",
            "bad CID",
        ),
    }
    for name, (raw, fragment) in cases.items():
        _, sections = iter_car(raw)
        with pytest.raises(CodecError, match=fragment):
            list(sections)
        assert name


def test_oversized_section_carries_a_hint() -> None:
    head = _header({"roots": [ROOT_CID], "version": 1})
    _, sections = iter_car(head + encode_varint(car_module.MAX_BLOCK_BYTES + 200))
    with pytest.raises(CodecError) as info:
        list(sections)
    assert info.value.hint and "2097152" in info.value.hint


def test_unsupported_hash_functions_are_a_clear_error() -> None:
    blake3 = CID.v1(RAW, encode_varint(0x1E) + b"\x20" + bytes(32))
    raw = _header({"roots": [blake3], "version": 1}) + _section(blake3, b"x")
    _, sections = iter_car(raw)
    with pytest.raises(CodecError, match="hash function 0x1e") as info:
        list(sections)
    assert info.value.hint


def test_identity_and_v0_cids_are_verified() -> None:
    ident = CID.v1(RAW, b"\x00\x03abc")
    v0 = CID(b"\x12\x20" + cid_for(RAW, b"pb").digest)
    raw = car_bytes([ident], [(ident, b"abc"), (v0, b"pb")])
    assert list(iter_car(raw)[1]) == [(ident, b"abc"), (v0, b"pb")]
    bad = _header({"roots": [ident], "version": 1}) + _section(ident, b"abd")
    with pytest.raises(BlockMismatchError):
        list(iter_car(bad)[1])


def test_import_car_fills_a_block_store() -> None:
    store = MemoryBlockStore()
    result = import_car(io.BytesIO(car_bytes([ROOT_CID], BLOCKS)), store)
    assert result.roots == (ROOT_CID,)
    assert (result.blocks, result.bytes) == (3, len(ROOT) + len(CHILD) + len(LEAF))
    assert {cid: store.get(cid) for cid, _ in BLOCKS} == dict(BLOCKS)


def test_import_car_refuses_an_incomplete_dag() -> None:
    with pytest.raises(CodecError, match=f"missing block {LEAF_CID}") as info:
        import_car(car_bytes([ROOT_CID], BLOCKS[:2]), MemoryBlockStore())
    assert info.value.hint
    with pytest.raises(CodecError, match="a root"):
        import_car(car_bytes([ROOT_CID], BLOCKS[1:]), MemoryBlockStore())
    store = MemoryBlockStore()
    result = import_car(car_bytes([ROOT_CID], BLOCKS[:2]), store, require_complete=False)
    assert result.blocks == 2 and len(store) == 2


def test_import_car_checks_dag_cbor_strictly() -> None:
    bad = bytes.fromhex("a2616201616101")  # unsorted keys
    cid = cid_for(DAG_CBOR, bad)
    with pytest.raises(CodecError, match="canonical order"):
        import_car(car_bytes([cid], [(cid, bad)]), MemoryBlockStore())
