"""The protobuf wire format, as much as ipfsbin reads and writes (IPNS records, dag-pb nodes).

A full protobuf runtime would be a large dependency for two small messages.
:func:`read_fields` yields each field with its number, wire type and value
(varints as integers, the other wire types as bytes) and refuses what is
malformed: truncated data, varints over 64 bits, field number 0, unknown
wire types. What a message makes of its fields (which are known, whether a
repeat is allowed) is the caller's decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ipfsbin.errors import CodecError

__all__ = [
    "BYTES",
    "FIXED32",
    "FIXED64",
    "MAX_UINT64",
    "VARINT",
    "Field",
    "bytes_field",
    "iter_fields",
    "read_fields",
    "varint_field",
]

VARINT: Final = 0
FIXED64: Final = 1
BYTES: Final = 2
FIXED32: Final = 5
MAX_UINT64: Final = 2**64 - 1
_MAX_VARINT_BYTES: Final = 10
_MAX_FIELD_NUMBER: Final = 2**29 - 1


@dataclass(frozen=True, slots=True)
class Field:
    number: int
    wire_type: int
    value: int | bytes
    """An int for :data:`VARINT`, the field's bytes for the other wire types."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    """One wire-type-0 field."""
    if not 0 <= value <= MAX_UINT64:
        raise ValueError(f"a protobuf varint is an unsigned 64-bit integer, got {value}")
    return _varint(number << 3 | VARINT) + _varint(value)


def bytes_field(number: int, value: bytes) -> bytes:
    """One length-delimited (wire type 2) field."""
    return _varint(number << 3 | BYTES) + _varint(len(value)) + value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    if pos < len(data) and data[pos] < 0x80:  # one byte: most tags and lengths
        return data[pos], pos + 1
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise CodecError(f"protobuf is truncated inside a varint at byte {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if value > MAX_UINT64:
                raise CodecError(f"protobuf varint at byte {pos} exceeds 64 bits")
            return value, pos + i + 1
    raise CodecError(f"protobuf varint at byte {pos} is longer than 10 bytes")


def read_fields(data: bytes) -> Iterator[Field]:
    """The fields of one message, in the order they appear; ``CodecError`` if malformed."""
    for number, wire_type, value in iter_fields(data):
        yield Field(number, wire_type, value)


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """:func:`read_fields` as plain (number, wire type, value) tuples: for messages read
    often and long (a dag-pb node of 174 links has some 700 fields)."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if not 1 <= number <= _MAX_FIELD_NUMBER:
            raise CodecError(f"protobuf has invalid field number {number} at byte {start}")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == BYTES:
            length, pos = _read_varint(data, pos)
            if length > len(data) - pos:
                raise CodecError(
                    f"protobuf field {number} claims {length} bytes "
                    f"but only {len(data) - pos} remain"
                )
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > len(data) - pos:
                raise CodecError(f"protobuf is truncated in field {number}")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise CodecError(f"protobuf field {number} has unsupported wire type {wire_type}")
        yield number, wire_type, value
