"""Reading decoded DAG-CBOR maps field by field, with one error type for every mistake.

Decoded blocks come from the network, so every accessor checks the type it
hands out and raises :class:`SchemaError` naming the object and the field.
Shared by every schema layer (manifest, descriptor, changeset, attestation,
trust), so it depends on nothing above the codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.codec.dagcbor import Value
from ipfsbin.errors import SchemaError

__all__ = [
    "MAX_INT",
    "expect_fields",
    "expect_type",
    "get_bytes",
    "get_cid",
    "get_int",
    "get_list",
    "get_map",
    "get_str",
    "kind_of",
    "rfc3339",
]

# Times and heights are unsigned 64-bit in the wire format but must also fit the
# signed range other IPLD implementations use for Int.
MAX_INT = 2**63 - 1


def expect_fields(
    value: Value, what: str, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> Mapping[str, Value]:
    """The map itself, after checking it has every required field and nothing unknown."""
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be a map, got {kind_of(value)}")
    if value.keys() == required:
        return value
    missing = sorted(required - value.keys())
    if missing:
        raise SchemaError(f"{what} lacks the field(s) {', '.join(missing)}")
    unknown = sorted(value.keys() - required - optional)
    if unknown:
        raise SchemaError(
            f"{what} has unknown field(s) {', '.join(unknown)}",
            hint="a newer ipfsbin may have written it; upgrade to read it",
        )
    return value


def expect_type(value: Value, what: str, expected: str) -> None:
    """Check the ``type`` field first, so a block of another kind is named as such.

    A later version of the same type (``ipfsbin/manifest/2`` where
    ``ipfsbin/manifest/1`` is expected) gets a hint to upgrade.
    """
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be a map, got {kind_of(value)}")
    kind = value.get("type")
    if kind == expected:
        return
    family = expected.rsplit("/", 1)[0] + "/"
    if isinstance(kind, str) and kind.startswith(family):
        raise SchemaError(
            f"{what}: type is {kind!r}, expected {expected!r}, the only version this ipfsbin reads",
            hint="a newer ipfsbin wrote it; upgrade to read it",
        )
    raise SchemaError(f"{what}: type is {kind!r}, expected {expected!r}")


def get_int(value: Value, what: str, *, minimum: int = 0) -> int:
    # bool is an int subclass in Python but a distinct kind in the data model
    if type(value) is not int:
        raise SchemaError(f"{what} must be an integer, got {kind_of(value)}")
    if not minimum <= value <= MAX_INT:
        raise SchemaError(f"{what} must be between {minimum} and {MAX_INT}, got {value}")
    return value


def get_str(value: Value, what: str) -> str:
    if type(value) is not str:
        raise SchemaError(f"{what} must be a string, got {kind_of(value)}")
    return value


def get_bytes(value: Value, what: str, *, length: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise SchemaError(f"{what} must be bytes, got {kind_of(value)}")
    if length is not None and len(value) != length:
        raise SchemaError(f"{what} must be {length} bytes, got {len(value)}")
    return value


def get_cid(value: Value, what: str, *, dag_cbor: bool = False) -> CID:
    if not isinstance(value, CID):
        raise SchemaError(f"{what} must be a link (CID), got {kind_of(value)}")
    if dag_cbor and value.codec != DAG_CBOR:
        raise SchemaError(f"{what} must link a dag-cbor block, got {value.codec_name} ({value})")
    return value


def get_list(value: Value, what: str) -> list[Value]:
    if type(value) is not list:
        raise SchemaError(f"{what} must be a list, got {kind_of(value)}")
    return value


def get_map(value: Value, what: str) -> dict[str, Value]:
    if type(value) is not dict:
        raise SchemaError(f"{what} must be a map, got {kind_of(value)}")
    return value


def rfc3339(seconds: int) -> str:
    """Unix seconds as RFC 3339 UTC, for messages (the wire format keeps integers)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s after the epoch"


def kind_of(value: object) -> str:
    """The data-model kind of ``value`` for messages: ``null``, ``a link (<cid>)``, ``int``, …"""
    if value is None:
        return "null"
    if isinstance(value, CID):
        return f"a link ({value})"
    return type(value).__name__
