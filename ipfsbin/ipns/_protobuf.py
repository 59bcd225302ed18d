"""The ``IpnsEntry`` protobuf message over the wire format of :mod:`ipfsbin.codec.protobuf`.

Decoding follows protobuf where that is harmless (fields in any order,
unknown fields with a known wire type skipped) and is stricter where protobuf
is ambiguous: a known field given twice or with the wrong wire type is refused,
since "the last one wins" would let two readers see different records in the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipfsbin.codec.protobuf import BYTES as _BYTES
from ipfsbin.codec.protobuf import MAX_UINT64 as _MAX_UINT64
from ipfsbin.codec.protobuf import VARINT as _VARINT
from ipfsbin.codec.protobuf import bytes_field, read_fields, varint_field
from ipfsbin.errors import CodecError, IpnsError

__all__ = ["IpnsEntry", "decode_entry", "encode_entry"]

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


def encode_entry(entry: IpnsEntry) -> bytes:
    """Serialize in field-number order, as Go's ``proto.Marshal`` does."""
    out = bytearray()
    for number, (attribute, wire_type) in _FIELDS.items():
        item = getattr(entry, attribute)
        if item is None:
            continue
        out += varint_field(number, item) if wire_type == _VARINT else bytes_field(number, item)
    return bytes(out)


def decode_entry(data: bytes) -> IpnsEntry:
    """Parse protobuf bytes into an :class:`IpnsEntry`; raise :class:`IpnsError` if malformed."""
    if not isinstance(data, bytes):
        raise TypeError(f"decode_entry takes bytes, not {type(data).__name__}")
    fields: dict[str, bytes | int] = {}
    reading = read_fields(data)
    while True:
        try:  # field by field, so the first problem in the bytes is the one reported
            field = next(reading, None)
        except CodecError as exc:
            raise IpnsError(f"IPNS record {exc.message}") from exc
        if field is None:
            break
        number, wire_type, item = field.number, field.wire_type, field.value
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
