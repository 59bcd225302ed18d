"""Unsigned LEB128 varints as multiformats use them (minimal, at most 9 bytes)."""

from __future__ import annotations

from ipfsbin.errors import CodecError

__all__ = ["decode_varint", "encode_varint"]

_MAX_VARINT_BYTES = 9


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varint must not be negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Return (value, offset after the varint); reject truncated or non-minimal forms."""
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        pos = offset + i
        if pos >= len(data):
            raise CodecError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise CodecError("non-minimal varint")
            return value, pos + 1
        shift += 7
    raise CodecError("varint longer than 9 bytes")
