"""Property tests: round trips, determinism, and hostile bytes only ever raise CodecError."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ipfsbin.codec import car, dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.errors import CodecError

cids = st.builds(cid_for, st.sampled_from([RAW, DAG_CBOR, 0x70, 0x300]), st.binary(max_size=8))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | cids
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a: Any, b: Any) -> bool:
    """Equality that tells -0.0 from 0.0 and keeps map order out of it."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a.hex() == b.hex()
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@FAST
@given(values)
def test_values_round_trip_and_encode_deterministically(value: Any) -> None:
    data = dagcbor.encode(value)
    decoded = dagcbor.decode(data)
    assert _same(decoded, value)
    assert dagcbor.encode(decoded) == data
    if type(value) is dict:
        assert dagcbor.encode(dict(reversed(list(value.items())))) == data


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_codec_error(data: bytes) -> None:
    try:
        value = dagcbor.decode(data)
    except CodecError:
        return
    assert dagcbor.encode(value) == data


@FAST
@given(values, st.data())
def test_mutated_blocks_only_raise_codec_error(value: Any, data: st.DataObject) -> None:
    block = bytearray(dagcbor.encode(value))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(min_value=0, max_value=max(len(block) - 1, 0)))
        if op == "flip" and block:
            block[pos] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "insert":
            block.insert(pos, data.draw(st.integers(min_value=0, max_value=255)))
        elif op == "delete" and block:
            del block[pos]
        elif op == "truncate":
            del block[pos:]
    raw = bytes(block)
    try:
        decoded = dagcbor.decode(raw)
    except CodecError:
        return
    # Whatever is accepted is canonical: it re-encodes to the very same bytes.
    assert dagcbor.encode(decoded) == raw


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=5), st.data())
def test_mutated_cars_only_raise_codec_error(leaves: list[bytes], data: st.DataObject) -> None:
    blocks = [(cid_for(RAW, leaf), leaf) for leaf in leaves]
    root, root_data = dagcbor.encode_block([cid for cid, _ in blocks])
    good = bytearray(car.car_bytes([root], [(root, root_data), *blocks]))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        pos = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
        op = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        if op == "flip":
            good[pos] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "truncate":
            del good[pos:]
            if not good:
                break
        else:
            good.insert(pos, data.draw(st.integers(min_value=0, max_value=255)))
    chunk = data.draw(st.integers(min_value=1, max_value=64))
    raw = bytes(good)
    try:
        header, sections = car.iter_car(raw[i : i + chunk] for i in range(0, len(raw), chunk))
        for cid, block in sections:
            assert isinstance(cid, CID)
            assert cid.verify(block)
    except CodecError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_cars_only_raise_codec_error(raw: bytes) -> None:
    assume(raw)
    try:
        _, sections = car.iter_car(io.BytesIO(raw))
        for _ in sections:
            pass
    except CodecError:
        pass
