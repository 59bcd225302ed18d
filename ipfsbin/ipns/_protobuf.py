"""The ``IpnsEntry`` protobuf message, encoded and decoded by hand.

The message has nine optional scalar fields, so a full protobuf runtime would
be a large dependency for a few dozen lines. Only what the IPNS spec needs is
here: varint (wire type 0) and length-delimited (wire type 2) fields.

Decoding follows protobuf where that is harmless (fields in any order,
unknown fields with a known wire type skipped) and is stricter where protobuf
is ambiguous: a known field given twice or with the wrong wire type is refused,
since "the last one wins" would let two readers see different records in the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipfsbin.errors import IpnsError

__all__ = ["IpnsEntry", "decode_entry", "encode_entry"]

_VARINT = 0
_FIXED64 = 1
_BYTES = 2
_FIXED32 = 5
_MAX_UINT64 = 2**64 - 1
_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = 2**29 - 1

# field number -> (attribute, wire type), as in the spec's IpnsEntry message
_FIELDS: dict[int, tuple[str, int]] = {
    1: ("value", _BYTES),
    2: ("signature_v1", _BYTES),
    3: ("validity_type", _VARINT),
    4: ("validity", _BYTES),
    5: ("sequence", _VARINT),
    6: ("ttl", _VARINT),
    7: ("pub_key", _BYTES),
    8: ("signature_v2", _BYTES),
    9: ("data", _BYTES),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class IpnsEntry:
    """The wire fields; ``None`` means the field is absent (proto3 ``optional``)."""

    value: bytes | None = None
    signature_v1: bytes | None = None
    validity_type: int | None = None
    validity: bytes | None = None
    sequence: int | None = None
    ttl: int | None = None
    pub_key: bytes | None = None
    signature_v2: bytes | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        for _number, (attribute, wire_type) in _FIELDS.items():
            item = getattr(self, attribute)
            if item is None:
                continue
            if wire_type == _BYTES and type(item) is not bytes:
                raise TypeError(f"{attribute} must be bytes, not {type(item).__name__}")
            if wire_type == _VARINT and (type(item) is not int or not 0 <= item <= _MAX_UINT64):
                raise ValueError(f"{attribute} must be an unsigned 64-bit integer, got {item!r}")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_entry(entry: IpnsEntry) -> bytes:
    """Serialize in field-number order, as Go's ``proto.Marshal`` does."""
    out = bytearray()
    for number, (attribute, wire_type) in _FIELDS.items():
        item = getattr(entry, attribute)
        if item is None:
            continue
        out += _encode_varint(number << 3 | wire_type)
        if wire_type == _VARINT:
            out += _encode_varint(item)
        else:
            out += _encode_varint(len(item))
            out += item
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise IpnsError(f"IPNS record protobuf is truncated inside a varint at byte {pos}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if value > _MAX_UINT64:
                raise IpnsError(f"IPNS record protobuf varint at byte {pos} exceeds 64 bits")
            return value, pos + i + 1
    raise IpnsError(f"IPNS record protobuf varint at byte {pos} is longer than 10 bytes")


def decode_entry(data: bytes) -> IpnsEntry:
    """Parse protobuf bytes into an :class:`IpnsEntry`; raise :class:`IpnsError` if malformed."""
    if not isinstance(data, bytes):
        raise TypeError(f"decode_entry takes bytes, not {type(data).__name__}")
    fields: dict[str, bytes | int] = {}
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if not 1 <= number <= _MAX_FIELD_NUMBER:
            raise IpnsError(
                f"IPNS record protobuf has invalid field number {number} at byte {start}"
            )
        item: bytes | int
        if wire_type == _VARINT:
            item, pos = _read_varint(data, pos)
        elif wire_type == _BYTES:
            length, pos = _read_varint(data, pos)
            if length > len(data) - pos:
                raise IpnsError(
                    f"IPNS record protobuf field {number} claims {length} bytes "
                    f"but only {len(data) - pos} remain"
                )
            item, pos = data[pos : pos + length], pos + length
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if size > len(data) - pos:
                raise IpnsError(f"IPNS record protobuf is truncated in field {number}")
            item, pos = data[pos : pos + size], pos + size
        else:
            raise IpnsError(
                f"IPNS record protobuf field {number} has unsupported wire type {wire_type}"
            )
        known = _FIELDS.get(number)
        if known is None:
            continue  # protobuf readers skip fields they do not know
        attribute, expected_wire_type = known
        if wire_type != expected_wire_type:
            raise IpnsError(
                f"IPNS record protobuf field {number} ({attribute}) has wire type {wire_type}, "
                f"expected {expected_wire_type}"
            )
        if attribute in fields:
            raise IpnsError(f"IPNS record protobuf field {number} ({attribute}) appears twice")
        fields[attribute] = item
    return IpnsEntry(**fields)  # type: ignore[arg-type]
