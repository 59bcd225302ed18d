"""CID parsing: the fast path for sha2-256 CIDv1 agrees with the general parser; text forms
in other bases are safe to make from several threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ipfsbin.codec.cid import (
    CID,
    DAG_CBOR,
    DAG_PB,
    IDENTITY,
    LIBP2P_KEY,
    RAW,
    SHA2_256,
    _sha256_cid_v1,
    cid_for,
)
from ipfsbin.codec.varint import encode_varint
from ipfsbin.errors import CodecError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("codec", [RAW, DAG_PB, DAG_CBOR, LIBP2P_KEY, 0x300])
def test_cid_for_matches_the_multiformats_layout(codec: int) -> None:
    cid = cid_for(codec, b"data")
    assert cid.bytes[:1] == b"\x01"
    assert cid.version == 1
    assert cid.codec == codec
    assert cid.hash_code == SHA2_256
    assert cid.multihash == b"\x12\x20" + cid.digest
    assert cid.verify(b"data")
    assert not cid.verify(b"other")
    assert CID.from_text(str(cid)) == cid
    assert CID.v1(codec, cid.multihash) == cid


def test_fast_constructor_equals_the_general_one() -> None:
    raw = cid_for(DAG_CBOR, b"x").bytes
    fast, slow = _sha256_cid_v1(raw), CID(raw)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert (fast.version, fast.codec, fast.hash_code, fast.digest, fast.multihash) == (
        slow.version,
        slow.codec,
        slow.hash_code,
        slow.digest,
        slow.multihash,
    )


def test_v0_and_identity_cids() -> None:
    v0 = CID.from_text("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY")
    assert (v0.version, v0.codec, len(v0.digest)) == (0, DAG_PB, 32)
    assert str(v0) == "QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY"
    ident = CID.v1(RAW, bytes([IDENTITY, 3]) + b"abc")
    assert ident.digest == b"abc"
    assert ident.verify(b"abc")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty"),
        (b"\x02\x71\x12\x20" + bytes(32), "version 2"),
        (b"\x01\x71\x12\x20" + bytes(31), "digest bytes"),
        (b"\x01\x71\x12\x20" + bytes(33), "digest bytes"),
        (b"\x01\x80", "truncated varint"),
        (b"\x01\x71\x12\x80\x00", "non-minimal"),
    ],
)
def test_malformed_cids_are_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        CID(raw)


def test_unsupported_hash_is_a_clear_error() -> None:
    cid = CID.v1(RAW, encode_varint(0x1B) + b"\x20" + bytes(32))  # keccak-256
    with pytest.raises(CodecError, match="unsupported multihash 0x1b"):
        cid.verify(b"")


@pytest.mark.parametrize("length", [0, 1, 5, 31, 32, 200])
def test_base32_text_is_the_multiformats_text(length: int) -> None:
    from multiformats import multibase

    for codec in (RAW, DAG_CBOR, 0x300):
        cid = CID.v1(codec, bytes([IDENTITY]) + encode_varint(length) + bytes(range(length)))
        text = str(multibase.encode(cid.bytes, "base32"))
        assert str(cid) == text
        assert CID.from_text(text) == cid
    sha = cid_for(DAG_CBOR, b"x")
    assert CID.from_text(str(multibase.encode(sha.bytes, "base32"))) == sha


@pytest.mark.parametrize("text", ["b", "bafy1", "bafyreia0", "bafyrei!", "bafyrei"])
def test_bad_base32_text_is_a_codec_error(text: str) -> None:
    with pytest.raises(CodecError, match="not a CID"):
        CID.from_text(text)


_FIRST_USE_IN_THREADS = """
import sys, threading
sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows
from ipfsbin.codec.cid import CID, RAW, cid_for
cid = cid_for(RAW, b"x")
barrier, errors = threading.Barrier(16), []
def name():
    barrier.wait()
    try:
        CID.from_text(cid.encode("base36"))
        cid.encode("base58btc")
    except Exception as exc:
        errors.append(exc)
threads = [threading.Thread(target=name) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.exit(repr(errors[0]) if errors else 0)
"""


def test_threads_naming_cids_in_other_bases_for_the_first_time_do_not_collide() -> None:
    # A fresh interpreter each time: what collided was multiformats' first use of a base.
    for _ in range(10):
        done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", _FIRST_USE_IN_THREADS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
