"""The one protobuf wire reader and writer (IPNS records and dag-pb nodes build on it)."""

from __future__ import annotations

import pytest

from ipfsbin.codec.protobuf import (
    BYTES,
    FIXED32,
    MAX_UINT64,
    VARINT,
    Field,
    bytes_field,
    read_fields,
    varint_field,
)
from ipfsbin.errors import CodecError


def test_fields_round_trip_in_order() -> None:
    data = bytes_field(1, b"abc") + varint_field(5, MAX_UINT64) + bytes_field(1, b"")
    assert list(read_fields(data)) == [
        Field(1, BYTES, b"abc"),
        Field(5, VARINT, MAX_UINT64),
        Field(1, BYTES, b""),
    ]


def test_fixed_width_fields_are_read_as_bytes() -> None:
    assert list(read_fields(bytes([2 << 3 | FIXED32]) + b"\x01\x02\x03\x04")) == [
        Field(2, FIXED32, b"\x01\x02\x03\x04")
    ]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x0a\x05ab", "field 1 claims 5 bytes but only 2 remain"),
        (b"\x28\x80", "truncated inside a varint at byte 1"),
        (b"\x28" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x28" + b"\xff" * 9 + b"\x7f", "exceeds 64 bits"),
        (b"\x02\x00", "invalid field number 0"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x0d\x01\x02", "truncated in field 1"),
    ],
)
def test_malformed_bytes_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        list(read_fields(data))


def test_varints_beyond_64_bits_are_not_written() -> None:
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        varint_field(1, MAX_UINT64 + 1)
