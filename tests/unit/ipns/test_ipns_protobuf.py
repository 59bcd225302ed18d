"""The hand-written IpnsEntry protobuf codec."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipfsbin.errors import IpnsError
from ipfsbin.ipns._protobuf import IpnsEntry, decode_entry, encode_entry

optional_bytes = st.none() | st.binary(max_size=300)
optional_uint64 = st.none() | st.integers(min_value=0, max_value=2**64 - 1)
entries = st.builds(
    IpnsEntry,
    value=optional_bytes,
    signature_v1=optional_bytes,
    validity_type=optional_uint64,
    validity=optional_bytes,
    sequence=optional_uint64,
    ttl=optional_uint64,
    pub_key=optional_bytes,
    signature_v2=optional_bytes,
    data=optional_bytes,
)


@given(entries)
def test_round_trip(entry: IpnsEntry) -> None:
    assert decode_entry(encode_entry(entry)) == entry


def test_fields_are_written_in_field_number_order_like_go() -> None:
    entry = IpnsEntry(data=b"d", signature_v2=b"s", validity_type=0, value=b"v", sequence=300)
    assert encode_entry(entry) == bytes.fromhex("0a0176180028ac024201734a0164")


def test_zero_valued_optional_field_is_present() -> None:
    # proto3 `optional`: an explicit 0 is on the wire and distinct from absent
    assert decode_entry(bytes.fromhex("1800")).validity_type == 0
    assert decode_entry(b"").validity_type is None


def test_unknown_fields_are_skipped() -> None:
    # field 15 varint, field 16 bytes, field 17 fixed32, field 18 fixed64, then data
    raw = bytes.fromhex("7801820102abcd8d0101020304910101020304050607084a0164")
    assert decode_entry(raw) == IpnsEntry(data=b"d")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (bytes.fromhex("4a05aa"), "claims 5 bytes but only 1 remain"),
        (bytes.fromhex("28"), "truncated inside a varint"),
        (bytes.fromhex("28ffffffffffffffffff7f"), "exceeds 64 bits"),
        (bytes.fromhex("28ffffffffffffffffffff01"), "longer than 10 bytes"),
        (bytes.fromhex("4a01644a0165"), "field 9 (data) appears twice"),
        (bytes.fromhex("4801"), "field 9 (data) has wire type 0, expected 2"),
        (bytes.fromhex("0b"), "unsupported wire type 3"),
        (bytes.fromhex("0001"), "invalid field number 0"),
    ],
)
def test_malformed_protobuf_is_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(IpnsError, match=re.escape(fragment)):
        decode_entry(raw)


def test_entry_validates_field_types() -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        IpnsEntry(data="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sequence must be an unsigned 64-bit integer"):
        IpnsEntry(sequence=-1)
