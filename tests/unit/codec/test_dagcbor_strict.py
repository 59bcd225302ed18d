"""Strict DAG-CBOR: what the codec writes, and every non-canonical form it refuses."""

from __future__ import annotations

import math
import threading

import pytest

import ipfsbin.codec.dagcbor as dagcbor_module
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.errors import BlockMismatchError, CodecError

LINK = cid_for(DAG_CBOR, b"link target")
LINK_TAG = b"\xd8\x2a\x58\x25\x00" + LINK.bytes


def test_public_names() -> None:
    assert sorted(dagcbor_module.__all__) == [
        "Value",
        "decode",
        "decode_block",
        "decode_checked_block",
        "encode",
        "encode_block",
    ]


# -- encoding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (-1, "20"),
        (2**64 - 1, "1bffffffffffffffff"),
        (-(2**64), "3bffffffffffffffff"),
        (1.5, "fb3ff8000000000000"),
        (0.0, "fb0000000000000000"),
        (True, "f5"),
        (None, "f6"),
        ("", "60"),
        (b"\x01", "4101"),
        ([], "80"),
        ({}, "a0"),
        ((1, 2), "820102"),
    ],
)
def test_encode_writes_the_canonical_form(value: object, hex_: str) -> None:
    assert dagcbor.encode(value).hex() == hex_


def test_map_keys_are_sorted_length_first_then_bytewise() -> None:
    value = {"bb": 1, "a": 2, "c": 3, "é": 4, "aaa": 5}
    data = dagcbor.encode(value)
    assert list(dagcbor.decode(data)) == ["a", "c", "bb", "é", "aaa"]
    assert dagcbor.encode(dict(reversed(value.items()))) == data


def test_links_are_tag_42_with_a_zero_prefix() -> None:
    assert dagcbor.encode(LINK) == LINK_TAG
    v0 = CID.from_text("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY")
    assert dagcbor.decode(dagcbor.encode([v0])) == [v0]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        ({"x": [-math.inf]}, "inf"),
        (2**64, "64-bit range"),
        (-(2**64) - 1, "64-bit range"),
        ({1: "a"}, "map keys must be strings"),
        ({b"k": "a"}, "map keys must be strings"),
        ({"a": {(1, 2): 3}}, "map keys must be strings"),
        (object(), "not a DAG-CBOR data-model value"),
        ({"x": {1, 2}}, "not a DAG-CBOR data-model value"),
        ("\ud800", "Unicode"),
        ({"\ud800": 1}, "Unicode"),
    ],
)
def test_encode_refuses_values_outside_the_data_model(value: object, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        dagcbor.encode(value)


def test_nesting_limit_is_the_same_for_encode_and_decode() -> None:
    def nest(levels: int, leaf: object) -> object:
        value = leaf
        for _ in range(levels):
            value = [value]
        return value

    deepest = nest(256, 1)
    assert dagcbor.decode(dagcbor.encode(deepest)) == deepest
    with_link = nest(255, LINK)
    assert dagcbor.decode(dagcbor.encode(with_link)) == with_link
    with pytest.raises(CodecError, match="nested deeper"):
        dagcbor.encode(nest(257, 1))
    with pytest.raises(CodecError, match="nested deeper"):
        dagcbor.encode(nest(256, LINK))
    with pytest.raises(CodecError, match="depth"):
        dagcbor.decode(b"\x81" * 257 + b"\x01")


def test_very_deep_values_fail_cleanly() -> None:
    value: object = 1
    for _ in range(100_000):
        value = [value]
    with pytest.raises(CodecError, match="nested deeper"):
        dagcbor.encode(value)
    with pytest.raises(CodecError):
        dagcbor.decode(b"\x81" * 100_000 + b"\x01")


def test_subclasses_and_look_alikes_encode_as_their_base_type() -> None:
    import enum

    class Level(enum.IntEnum):
        TOP = 3

    assert dagcbor.encode([Level.TOP, bytearray(b"ab"), memoryview(b"c")]) == dagcbor.encode(
        [3, b"ab", b"c"]
    )


# -- decoding: every non-canonical or foreign form ------------------------------

REFUSED = {
    # integers, lengths and headers that are not minimal
    "int in 1 extra byte": ("1801", "not canonical"),
    "int in 2 bytes": ("190001", "not canonical"),
    "negative int in 1 extra byte": ("3800", "not canonical"),
    "string length in 1 extra byte": ("780161", "not canonical"),
    "array length in 1 extra byte": ("980100", "not canonical"),
    "map length in 1 extra byte": ("b801616101", "not canonical"),
    "tag 42 header in 2 bytes": ("d9002a5825" + "00" + LINK.bytes.hex(), "not canonical"),
    # floats
    "half float": ("f93c00", "not canonical"),
    "single float": ("fa3fc00000", "not canonical"),
    "half NaN": ("f97e00", "nan"),
    "double NaN": ("fb7ff8000000000000", "nan"),
    "half infinity": ("f97c00", "inf"),
    "double -infinity": ("fbfff0000000000000", "inf"),
    "NaN in a map": ("a16161f97e00", "nan"),
    # maps
    "unsorted keys": ("a2616201616101", "out of canonical order"),
    "longer key first": ("a262616101616202", "out of canonical order"),
    "duplicate keys": ("a2616101616102", "(?i)duplicate"),
    "integer key": ("a10102", "map key"),
    "bytes key": ("a1416101", "map keys must be strings"),
    "array key": ("a1810102", "map key"),
    "map as key": ("a1a0 01".replace(" ", ""), "map key"),
    # indefinite lengths
    "indefinite array": ("9f01ff", "(?i)indefinite"),
    "indefinite map": ("bf616101ff", "(?i)indefinite"),
    "indefinite string": ("7f6161ff", "(?i)indefinite"),
    "indefinite bytes": ("5f4101ff", "(?i)indefinite"),
    # tags
    "datetime tag 0": ("c074323031332d30332d32315432303a30343a30305a", "tag"),
    "epoch tag 1": ("c101", "tag"),
    "bignum tag 2": ("c249010000000000000000", "tag"),
    "negative bignum tag 3": ("c349010000000000000000", "tag"),
    "decimal tag 4": ("c4822003", "tag"),
    "bigfloat tag 5": ("c5821b7fffffffffffffff01", "tag"),
    "shared value tag 28": ("d81c8101", "tag"),
    "shared reference tag 29": ("d81d00", "tag"),
    "string reference tags": ("d90100826161d81900", "tag"),
    "set tag 258": ("d9010281 01".replace(" ", ""), "tag"),
    "self-describe tag 55799": ("d9d9f701", "tag"),
    "unknown tag 43": ("d82b00", "tag 43"),
    "unknown tag in a list": ("81d86300", "tag 99"),
    "unknown tag as a map value": ("a16161d86300", "tag 99"),
    "tag 42 without 0x00": ("d82a5824" + LINK.bytes.hex(), "0x00"),
    "tag 42 over a string": ("d82a6161", "byte string"),
    "tag 42 empty": ("d82a40", "byte string"),
    "tag 42 with a bad CID": ("d82a43000201", "malformed CID"),
    "tag 42 with a truncated CID": ("d82a5824" + "00" + LINK.bytes[:-1].hex(), "malformed CID"),
    "tag 42 with CID version 2": ("d82a4400027112", "malformed CID"),
    # simple values
    "undefined": ("f7", "data model"),
    "simple value 16": ("f0", "data model"),
    "simple value 255": ("f8ff", "data model"),
    "undefined in a list": ("81f7", "data model"),
    "undefined in a map": ("a16161f7", "data model"),
    "reserved simple byte": ("fc", "CBOR"),
    "break alone": ("ff", "CBOR"),
    # framing
    "trailing byte": ("0000", "after the end"),
    "two values": ("a0a0", "after the end"),
    "truncated int": ("19ff", "truncated"),
    "truncated string": ("6361", "truncated"),
    "truncated map": ("a16161", "truncated"),
    "truncated link": ("d82a5825" + "00" + LINK.bytes[:10].hex(), "truncated"),
    "invalid UTF-8": ("62c328", "CBOR"),
    "UTF-8 surrogate": ("63eda080", "CBOR"),
    "UTF-8 overlong": ("62c0af", "CBOR"),
}


@pytest.mark.parametrize(("hex_", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_decode_refuses(hex_: str, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        dagcbor.decode(bytes.fromhex(hex_))


def test_decode_refuses_empty_input_and_wrong_types() -> None:
    with pytest.raises(CodecError, match="empty"):
        dagcbor.decode(b"")
    with pytest.raises(TypeError):
        dagcbor.decode(bytearray(b"\x00"))  # type: ignore[arg-type]


def test_integer_range_limits_decode() -> None:
    assert dagcbor.decode(bytes.fromhex("1bffffffffffffffff")) == 2**64 - 1
    assert dagcbor.decode(bytes.fromhex("3bffffffffffffffff")) == -(2**64)


def test_decoded_links_are_cids() -> None:
    value = dagcbor.decode(dagcbor.encode({"a": [LINK, {"b": LINK}], "c": LINK}))
    assert value == {"a": [LINK, {"b": LINK}], "c": LINK}
    assert type(value["c"]) is CID
    assert value["c"].codec == DAG_CBOR
    assert value["c"].digest == LINK.digest


def test_every_cid_form_decodes_like_the_slow_parser() -> None:
    odd = [
        cid_for(RAW, b"x"),
        CID.v1(0x300, b"\x12\x20" + bytes(32)),  # two-byte codec
        CID.v1(DAG_CBOR, b"\x00\x03abc"),  # identity hash
        CID.from_text("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY"),
    ]
    decoded = dagcbor.decode(dagcbor.encode(odd))
    for got, want in zip(decoded, odd, strict=True):
        assert (got.bytes, got.version, got.codec, got.hash_code, got.digest) == (
            want.bytes,
            want.version,
            want.codec,
            want.hash_code,
            want.digest,
        )


# -- blocks ---------------------------------------------------------------------


def test_decode_block_checks_the_hash_and_the_codec() -> None:
    cid, data = dagcbor.encode_block({"x": 1})
    assert dagcbor.decode_block(cid, data) == {"x": 1}
    with pytest.raises(BlockMismatchError, match="do not hash"):
        dagcbor.decode_block(cid, dagcbor.encode({"x": 2}))
    with pytest.raises(CodecError, match="raw, not dag-cbor"):
        dagcbor.decode_block(cid_for(RAW, data), data)


def test_a_checked_block_decodes_as_the_strict_decoder_does() -> None:
    value = {"a": [LINK, {"b": LINK, "c": None}], "longer": 2**64 - 1, "f": -1.5, "t": b"\x00"}
    cid, data = dagcbor.encode_block(value)
    checked = dagcbor.decode_checked_block(cid, data)
    assert checked == dagcbor.decode_block(cid, data) == value
    assert type(checked["a"][0]) is CID
    with pytest.raises(BlockMismatchError, match="do not hash"):
        dagcbor.decode_checked_block(cid, dagcbor.encode({"x": 2}))
    with pytest.raises(CodecError, match="raw, not dag-cbor"):
        dagcbor.decode_checked_block(cid_for(RAW, data), data)


@pytest.mark.parametrize(
    "name",
    [
        "duplicate keys",
        "indefinite map",
        "unknown tag 43",
        "shared reference tag 29",
        "bignum tag 2",
        "tag 42 without 0x00",
        "truncated map",
        "invalid UTF-8",
    ],
)
def test_a_checked_block_still_refuses_what_would_change_its_meaning(name: str) -> None:
    # what the strict proof alone catches (key order, widths) cannot change the decoded value
    data = bytes.fromhex(REFUSED[name][0])
    with pytest.raises(CodecError):
        dagcbor.decode_checked_block(cid_for(DAG_CBOR, data), data)


def test_codec_is_safe_across_threads() -> None:
    values = [{"n": n, "links": [LINK] * (n % 5), "s": "x" * n} for n in range(200)]
    expected = [dagcbor.encode(v) for v in values]
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            for value, data in zip(values, expected, strict=True):
                if dagcbor.encode(value) != data or dagcbor.decode(data) != value:
                    failures.append(repr(value))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
