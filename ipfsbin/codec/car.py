"""CAR v1 files: write them as a stream, read them as a stream, checking every block.

A CARv1 is a varint-length-prefixed DAG-CBOR header ``{"roots": [CID…],
"version": 1}`` followed by sections, each a varint length and then the
block's CID bytes immediately followed by the block's bytes. The reader
checks every block against its CID as it arrives (a CAR from the network is
hostile input), bounds every length before reading it, and never holds more
than one section in memory.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final, Protocol

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, IDENTITY, SHA2_256
from ipfsbin.codec.varint import decode_varint, encode_varint
from ipfsbin.errors import BlockMismatchError, CodecError

__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_HEADER_BYTES",
    "CarHeader",
    "CarImport",
    "car_bytes",
    "import_car",
    "iter_car",
    "write_car",
]

MAX_BLOCK_BYTES: Final = 2 * 1024 * 1024
"""Largest block accepted: what IPFS peers exchange (Kubo refuses more than 1 MiB on put)."""
MAX_HEADER_BYTES: Final = 1024 * 1024
_MAX_CID_BYTES: Final = 128
_MAX_SECTION_BYTES: Final = MAX_BLOCK_BYTES + _MAX_CID_BYTES
_CHUNK: Final = 64 * 1024
_BATCH_BLOCKS: Final = 256


class _BlockSink(Protocol):
    """The part of :class:`ipfsbin.store.base.BlockStore` that :func:`import_car` needs."""

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class CarHeader:
    """The header of a CARv1: its root CIDs (version is always 1)."""

    roots: tuple[CID, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.roots, tuple) or not all(isinstance(r, CID) for r in self.roots):
            raise TypeError("CarHeader.roots must be a tuple of CIDs")

    def to_dag(self) -> dict[str, dagcbor.Value]:
        return {"roots": list(self.roots), "version": 1}

    @classmethod
    def from_dag(cls, value: dagcbor.Value) -> CarHeader:
        if type(value) is not dict:
            raise CodecError(f"CAR header is a {type(value).__name__}, expected a map")
        version = value.get("version")
        if version != 1 or type(version) is not int:
            hint = "export a CARv1 (e.g. `ipfs dag export`)" if version == 2 else None
            raise CodecError(f"CAR header version is {version!r}, expected 1", hint=hint)
        unknown = sorted(set(value) - {"roots", "version"})
        if unknown:
            raise CodecError(f"CAR header has unknown fields {unknown}; expected roots, version")
        roots = value.get("roots")
        if type(roots) is not list or not all(type(r) is CID for r in roots):
            raise CodecError("CAR header roots must be a list of CIDs")
        return cls(roots=tuple(roots))


@dataclass(frozen=True, kw_only=True, slots=True)
class CarImport:
    """What :func:`import_car` stored."""

    roots: tuple[CID, ...]
    blocks: int
    bytes: int


# -- writing ------------------------------------------------------------------


def write_car(
    roots: Sequence[CID],
    blocks: Iterable[tuple[CID, bytes]],
    out: IO[bytes],
    *,
    verify: bool = True,
) -> int:
    """Write a CARv1 of ``blocks`` (checked against their CIDs) to ``out``; returns bytes written.

    Blocks are written in the order given, one at a time, so a whole DAG never
    has to fit in memory. ``verify`` False skips the check, for blocks whose
    CIDs the caller computed from these very bytes (the reader of the CAR
    checks them again).
    """
    header = dagcbor.encode(CarHeader(roots=tuple(roots)).to_dag())
    written = out.write(encode_varint(len(header)) + header)
    for cid, data in blocks:
        if verify:
            _verify(cid, data)
        if len(data) > MAX_BLOCK_BYTES:
            raise CodecError(f"block {cid} is {len(data)} bytes, above {MAX_BLOCK_BYTES}")
        raw = cid.bytes
        written += out.write(encode_varint(len(raw) + len(data)) + raw)
        written += out.write(data)
    return written


def car_bytes(
    roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]], *, verify: bool = True
) -> bytes:
    """The CARv1 of ``blocks`` as one bytes object (for small DAGs and tests)."""
    buffer = io.BytesIO()
    write_car(roots, blocks, buffer, verify=verify)
    return buffer.getvalue()


# -- reading ------------------------------------------------------------------


class _Reader:
    """Exact reads over a binary stream or an iterable of chunks (e.g. an HTTP body)."""

    def __init__(self, source: IO[bytes] | Iterable[bytes] | bytes) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._chunks: Iterator[bytes] = iter([bytes(source)])
        elif hasattr(source, "read"):
            self._chunks = _read_chunks(source)  # type: ignore[arg-type]
        else:
            self._chunks = iter(source)
        self._buffer = b""
        self._pos = 0  # next unread byte in the buffer
        self._consumed = 0  # bytes before the buffer, for messages
        self._eof = False

    @property
    def offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self, size: int) -> bool:
        if len(self._buffer) - self._pos >= size:
            return True
        parts = [self._buffer[self._pos :]]
        have = len(parts[0])
        while have < size and not self._eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                break
            if not isinstance(chunk, (bytes, bytearray)):
                raise TypeError(f"CAR source gave {type(chunk).__name__}, not bytes")
            parts.append(bytes(chunk))
            have += len(chunk)
        self._consumed += self._pos
        self._buffer = b"".join(parts)
        self._pos = 0
        return have >= size

    def at_end(self) -> bool:
        return not self._fill(1)

    def read_exact(self, size: int, what: str) -> bytes:
        if not self._fill(size):
            raise CodecError(
                f"CAR truncated in {what} at byte {self.offset}: "
                f"expected {size} bytes, got {len(self._buffer) - self._pos}"
            )
        data = self._buffer[self._pos : self._pos + size]
        self._pos += size
        return data

    def read_varint(self, what: str) -> int:
        self._fill(10)
        window = self._buffer[self._pos : self._pos + 10]
        if not window:
            raise CodecError(f"CAR truncated before {what} at byte {self.offset}")
        try:
            value, end = decode_varint(window, 0)
        except CodecError as exc:
            raise CodecError(f"bad {what} at byte {self.offset}: {exc.message}") from None
        self._pos += end
        return value


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _cid_length(section: bytes) -> int:
    """How many bytes at the start of a section are the CID."""
    if len(section) >= 34 and section[0] == SHA2_256 and section[1] == 32:
        return 34  # CIDv0: a bare sha2-256 multihash
    pos = 0
    for _ in range(3):  # version, codec, hash function
        _, pos = decode_varint(section, pos)
    length, pos = decode_varint(section, pos)
    if pos + length > len(section) or pos + length > _MAX_CID_BYTES:
        raise CodecError(f"CID in CAR section claims a {length}-byte digest that does not fit")
    return pos + length


def _verify(cid: CID, data: bytes) -> None:
    code = cid.hash_code
    if code == SHA2_256:
        ok = hashlib.sha256(data).digest() == cid.digest
    elif code == IDENTITY:
        ok = cid.digest == data
    else:
        raise CodecError(
            f"block {cid} uses hash function 0x{code:x}; only sha2-256 and identity are checked",
            hint="re-export the DAG with sha2-256 CIDs (the IPFS default)",
        )
    if not ok:
        raise BlockMismatchError(f"CAR block bytes do not hash to {cid}")


def _read_header(reader: _Reader) -> CarHeader:
    size = reader.read_varint("the header length")
    if size == 0 or size > MAX_HEADER_BYTES:
        raise CodecError(f"CAR header length {size} is outside 1..{MAX_HEADER_BYTES}")
    raw = reader.read_exact(size, "the header")
    try:
        value = dagcbor.decode(raw)
    except CodecError as exc:
        raise CodecError(f"CAR header is not DAG-CBOR: {exc.message}") from None
    return CarHeader.from_dag(value)


def _iter_sections(reader: _Reader) -> Iterator[tuple[CID, bytes]]:
    while not reader.at_end():
        start = reader.offset
        size = reader.read_varint("a section length")
        if size == 0 or size > _MAX_SECTION_BYTES:
            raise CodecError(
                f"CAR section at byte {start} is {size} bytes, outside 1..{_MAX_SECTION_BYTES}",
                hint=f"blocks above {MAX_BLOCK_BYTES} bytes are not exchanged by IPFS peers",
            )
        section = reader.read_exact(size, "a section")
        try:
            cid_len = _cid_length(section)
            cid = CID(section[:cid_len])
        except CodecError as exc:
            raise CodecError(f"CAR section at byte {start}: bad CID ({exc.message})") from None
        data = section[cid_len:]
        _verify(cid, data)
        yield cid, data


def iter_car(
    source: IO[bytes] | Iterable[bytes] | bytes,
) -> tuple[CarHeader, Iterator[tuple[CID, bytes]]]:
    """Read a CARv1: the header at once, then the verified blocks as they stream in.

    ``source`` is a binary stream, an iterable of byte chunks (such as
    ``KuboClient.dag_export``) or bytes. Raises :class:`CodecError` (or
    :class:`BlockMismatchError`) for a bad header, a truncated or oversized
    section, an unsupported hash function or a block that does not match its CID.
    """
    reader = _Reader(source)
    header = _read_header(reader)
    return header, _iter_sections(reader)


# -- into a block store -------------------------------------------------------


def import_car(
    source: IO[bytes] | Iterable[bytes] | bytes,
    store: _BlockSink,
    *,
    require_complete: bool = True,
) -> CarImport:
    """Put every block of a CAR into ``store``; with ``require_complete``, check the DAG.

    The completeness check follows DAG-CBOR links from the roots and raises
    :class:`CodecError` when a linked block is missing from the CAR (a Kubo
    export that failed mid-way looks exactly like that). DAG-PB nodes are
    stored but not descended into; identity CIDs need no block.
    """
    header, sections = iter_car(source)
    batch: list[tuple[CID, bytes]] = []
    links: dict[CID, CID | None] = {root: None for root in header.roots}
    seen: set[CID] = set()
    blocks = total = 0
    for cid, data in sections:
        blocks += 1
        total += len(data)
        if require_complete:
            seen.add(cid)
            if cid.codec == DAG_CBOR:
                for link in _links(dagcbor.decode(data)):
                    links.setdefault(link, cid)
        batch.append((cid, data))
        if len(batch) >= _BATCH_BLOCKS:
            store.put_many(batch)
            batch = []
    if batch:
        store.put_many(batch)
    if require_complete:
        for cid, parent in links.items():
            if cid not in seen and cid.hash_code != IDENTITY:
                where = f"linked from {parent}" if parent else "a root"
                raise CodecError(
                    f"CAR is missing block {cid} ({where}); the DAG is incomplete",
                    hint="the export may have stopped early; fetch it again",
                )
    return CarImport(roots=header.roots, blocks=blocks, bytes=total)


def _links(value: dagcbor.Value) -> Iterator[CID]:
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is CID:
            yield item
        elif type(item) is dict:
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
