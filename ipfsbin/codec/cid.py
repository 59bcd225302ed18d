"""Content identifiers kept as bytes.

A :class:`CID` wraps the binary form and parses it once; text forms are only
for the edges (CLI, Kubo arguments). Base32, the form Kubo prints and takes,
goes through the standard library; other bases through ``multiformats``,
which costs far more than the byte work here.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
from typing import Final

from multiformats import multibase

from ipfsbin.codec.varint import decode_varint, encode_varint
from ipfsbin.errors import CodecError

__all__ = [
    "CID",
    "DAG_CBOR",
    "DAG_PB",
    "IDENTITY",
    "LIBP2P_KEY",
    "RAW",
    "SHA2_256",
    "cid_for",
    "cid_from_sha256",
]

RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
LIBP2P_KEY: Final = 0x72
SHA2_256: Final = 0x12
IDENTITY: Final = 0x00

_CODEC_NAMES: Final = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor", LIBP2P_KEY: "libp2p-key"}

# multiformats registers a base's codec on its first use, and two threads using it
# for the first time at once both register it, the second failing ("already
# exists"; seen when share's add threads first named the signing key in base36).
# Registered here, under the import lock, for every base ipfsbin encodes or reads.
for _base in ("base36", "base58btc", "base32"):
    multibase.decode(multibase.encode(b"\x01", _base))
_SHA256_PREFIX: Final = bytes([SHA2_256, 32])

_SHA256_V1_PREFIXES: Final = frozenset(
    bytes([1, codec, SHA2_256, 32]) for codec in (RAW, DAG_PB, DAG_CBOR, LIBP2P_KEY)
)
"""CIDv1 + one-byte codec + sha2-256 + 32: the four first bytes of nearly every CID we meet."""


def _b32_decode(text: str) -> builtins.bytes:
    """RFC 4648 base32 without padding, lower case (multibase ``b``), by the standard library:
    ``multiformats`` takes about a millisecond per CID, which a walk of thousands of
    blocks through Kubo's RPC pays twice per block (argument out, ``refs`` line in)."""
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


class CID:
    """A CIDv0 or CIDv1, immutable and hashable, compared by its bytes."""

    __slots__ = ("_bytes", "_codec", "_digest_offset", "_hash_code", "_version")

    def __init__(self, raw: builtins.bytes) -> None:
        if not isinstance(raw, builtins.bytes):
            raise TypeError(f"CID takes bytes, not {type(raw).__name__}")
        self._bytes = raw
        if len(raw) == 36 and raw[:4] in _SHA256_V1_PREFIXES:
            # The shape of nearly every CID we meet: skip the varint parser.
            self._version = 1
            self._codec = raw[1]
            self._hash_code = SHA2_256
            self._digest_offset = 2
            return
        if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == 32:
            self._version = 0
            self._codec = DAG_PB
            self._hash_code = SHA2_256
            self._digest_offset = 0
            return
        if not raw:
            raise CodecError("empty bytes are not a CID")
        version, pos = decode_varint(raw, 0)
        if version != 1:
            raise CodecError(f"unsupported CID version {version} in {raw[:8].hex()}…")
        codec, pos = decode_varint(raw, pos)
        hash_code, pos_len = decode_varint(raw, pos)
        length, pos_digest = decode_varint(raw, pos_len)
        if pos_digest + length != len(raw):
            raise CodecError(
                f"CID multihash says {length} digest bytes, found {len(raw) - pos_digest}"
            )
        self._version = 1
        self._codec = codec
        self._hash_code = hash_code
        self._digest_offset = pos

    @classmethod
    def from_text(cls, text: str) -> CID:
        text = text.strip()
        if text.startswith("/ipfs/"):
            text = text[len("/ipfs/") :]
        try:
            if len(text) == 46 and text.startswith("Qm"):
                raw = multibase.decode("z" + text)
            elif text[:1] == "b" and text.islower() and "=" not in text:
                raw = _b32_decode(text[1:])
            else:
                raw = multibase.decode(text)
        except Exception as exc:  # multiformats raises several unrelated types
            raise CodecError(f"not a CID: {text!r} ({exc})") from exc
        return cls(raw)

    @classmethod
    def v1(cls, codec: int, multihash: builtins.bytes) -> CID:
        return cls(b"\x01" + encode_varint(codec) + multihash)

    @property
    def bytes(self) -> builtins.bytes:
        return self._bytes

    @property
    def version(self) -> int:
        return self._version

    @property
    def codec(self) -> int:
        return self._codec

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self._codec, hex(self._codec))

    @property
    def hash_code(self) -> int:
        return self._hash_code

    @property
    def multihash(self) -> builtins.bytes:
        return self._bytes[self._digest_offset :]

    @property
    def digest(self) -> builtins.bytes:
        if self._hash_code == SHA2_256 and len(self._bytes) - self._digest_offset == 34:
            return self._bytes[-32:]
        mh = self.multihash
        _, pos = decode_varint(mh, 0)
        _, pos = decode_varint(mh, pos)
        return mh[pos:]

    def verify(self, data: builtins.bytes) -> bool:
        """True when ``data`` hashes to this CID (sha2-256 and identity only)."""
        if self._hash_code == SHA2_256:
            return self.digest == hashlib.sha256(data).digest()
        if self._hash_code == IDENTITY:
            return self.digest == data
        raise CodecError(f"unsupported multihash 0x{self._hash_code:x} in CID {self}")

    def encode(self, base: str = "base32") -> str:
        if self._version == 0:
            return str(multibase.encode(self._bytes, "base58btc"))[1:]
        if base == "base32":
            # multibase's base32 is RFC 4648 in lower case without padding; the stdlib
            # codec gives the same string about a hundred times faster (every CID a
            # batch writes to the queue, the ledger and its log is encoded).
            return "b" + base64.b32encode(self._bytes).decode("ascii").lower().rstrip("=")
        return str(multibase.encode(self._bytes, base))

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"CID({self.encode()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other._bytes == self._bytes

    def __lt__(self, other: CID) -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __reduce__(self) -> tuple[type[CID], tuple[builtins.bytes]]:
        return (CID, (self._bytes,))


def _sha256_cid_v1(raw: bytes) -> CID:
    """A CID from 36 bytes whose first four are in :data:`_SHA256_V1_PREFIXES` (not checked).

    For the codec's hot path, which has already looked at the prefix: it skips
    ``__init__`` and costs half as much as ``CID(raw)``.
    """
    cid = _new_object(CID)
    cid._bytes = raw
    cid._version = 1
    cid._codec = raw[1]
    cid._hash_code = SHA2_256
    cid._digest_offset = 2
    return cid


_new_object = object.__new__


def cid_for(codec: int, data: bytes) -> CID:
    """The CIDv1 (sha2-256) of ``data`` under ``codec``."""
    return cid_from_sha256(codec, hashlib.sha256(data).digest())


def cid_from_sha256(codec: int, digest: bytes) -> CID:
    """The CIDv1 under ``codec`` of bytes whose sha2-256 is ``digest`` (already hashed)."""
    if len(digest) != 32:
        raise ValueError(f"a sha2-256 digest is 32 bytes, got {len(digest)}")
    prefix = _V1_CODEC_PREFIXES.get(codec) or _v1_prefix(codec)
    return CID(prefix + digest)


def _v1_prefix(codec: int) -> bytes:
    return b"\x01" + encode_varint(codec) + _SHA256_PREFIX


_V1_CODEC_PREFIXES: Final = {
    codec: _v1_prefix(codec) for codec in (RAW, DAG_PB, DAG_CBOR, LIBP2P_KEY)
}
