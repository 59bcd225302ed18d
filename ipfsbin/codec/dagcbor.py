"""Strict DAG-CBOR on top of cbor2.

The encoder writes the one canonical form: map keys are strings sorted by
length then bytes, floats are always 64-bit, integers minimal, lengths
definite, links are tag 42 over ``0x00 + CID bytes``. NaN and infinities are
refused. The decoder accepts exactly the bytes this encoder would write.

How decoding proves that, cheaply:

* cbor2 decodes natively with indefinite lengths refused and only text or
  byte strings as map keys; every semantic tag cbor2 knows is overridden to
  fail, and tag 42 is decoded straight into a :class:`CID`, so no value
  outside the data model (datetimes, bignums, sets, shared references, …)
  can come out of it; any other tag stays a ``CBORTag`` and is refused below;
* an ``object_hook`` runs once per map: keys must be strings in strictly
  increasing canonical order, values must be data-model types (this is where
  NaN, infinities, ``undefined``, other simple values and unknown tags are
  caught, and where lists are checked);
* the value is then re-encoded by cbor2's plain encoder, which writes maps in
  their (now proven canonical) insertion order, minimal integers and lengths
  and 64-bit floats, and the result must equal the input byte for byte. That
  one comparison rejects every remaining non-canonical form: short floats,
  non-minimal integers, lengths and tag headers, repeated keys (cbor2 keeps
  one, so the re-encoding is shorter) and trailing bytes.

cbor2's ``canonical=True`` mode and its ``encoders=`` table are avoided on
purpose: in cbor2 6.3 either one costs more than the rest of the decode.

Data model values in Python: ``None``, ``bool``, ``int``, ``float``, ``str``,
``bytes``, ``list``, ``dict[str, value]`` and :class:`CID`.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias, TypeVar

import cbor2

from ipfsbin.codec.cid import _SHA256_V1_PREFIXES, CID, DAG_CBOR, _sha256_cid_v1, cid_for
from ipfsbin.errors import BlockMismatchError, CodecError

__all__ = ["Value", "decode", "decode_block", "decode_checked_block", "encode", "encode_block"]

Value: TypeAlias = Any
"""A data-model value (see the module docstring); ``Any`` because mypy cannot nest it."""

_CID_TAG: Final = 42
_MAX_DEPTH: Final = 256
"""Most levels of nesting (containers and links) that encode writes and decode reads."""
_MIN_INT: Final = -(2**64)
_MAX_INT: Final = 2**64 - 1

# Semantic tags cbor2 6.x decodes by itself (found by probing every tag below
# 300 and the registered larger ones), plus neighbours it may learn. Each is
# overridden to fail; any other tag is left a CBORTag, which the checks refuse.
_CBOR2_SEMANTIC_TAGS: Final = (
    0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37,
    52, 54, 100, 256, 258, 260, 261, 262, 263, 1004, 1040, 55799, 43000,
)  # fmt: skip

_CANONICAL_KEYS_MAX: Final = 4096  # bounds on the key-order caches below
_CACHED_KEYS_MAX: Final = 32
_SCALARS: Final = frozenset({str, bytes, int, bool, type(None), CID})
"""Types that need no check once decoded (ints cannot leave the range: bignum tags are refused)."""


def _encoded_key_order(key: str) -> tuple[int, str]:
    """Sort key for canonical order: UTF-8 length first, then code points.

    Code-point order of ``str`` equals byte order of its UTF-8 form, so only
    the length needs the encoded form, and only for non-ASCII keys.
    """
    if key.isascii():
        return (len(key), key)
    try:
        return (len(key.encode("utf-8")), key)
    except UnicodeEncodeError as exc:
        raise CodecError(f"map key {key!r} is not valid Unicode ({exc.reason})") from None


# -- encoding -----------------------------------------------------------------


def _cid_header(length: int) -> bytes:
    """Tag 42 and the byte-string head for a link of ``length`` CID bytes (+1 for 0x00)."""
    n = length + 1
    if n < 24:
        head = bytes([0x40 + n])
    elif n < 0x100:
        head = bytes([0x58, n])
    elif n < 0x10000:
        head = b"\x59" + n.to_bytes(2, "big")
    else:
        head = b"\x5a" + n.to_bytes(4, "big")
    return b"\xd8\x2a" + head + b"\x00"


_CID_HEAD_36: Final = _cid_header(36)


def _write_cid(encoder: cbor2.CBOREncoder, value: object) -> None:
    """cbor2 ``default`` hook: only CIDs reach it (everything else was checked before)."""
    if type(value) is CID:
        raw = value._bytes  # noqa: SLF001 - same package; the property costs a call per link
        encoder.write((_CID_HEAD_36 if len(raw) == 36 else _cid_header(len(raw))) + raw)
        return
    raise CodecError(f"{type(value).__name__} is not a DAG-CBOR data-model value")


class _Encoders(threading.local):
    """One plain cbor2 encoder per thread: a shared one would interleave writes."""

    def __init__(self) -> None:
        self.encoder = cbor2.CBOREncoder(io.BytesIO(), default=_write_cid)


_ENCODERS: Final = _Encoders()


def _check_float(value: float) -> float:
    if not math.isfinite(value):
        raise CodecError(f"DAG-CBOR has no {value!r}; use null or a string")
    return value


def _prepare(value: Value, depth: int) -> Any:
    """What cbor2 should write for ``value``: maps sorted, everything checked.

    Returns plain ``dict``/``list``/scalars, so the plain encoder's output is
    canonical.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is int:
        if not _MIN_INT <= value <= _MAX_INT:
            raise CodecError(f"integer {value} is outside DAG-CBOR's 64-bit range")
        return value
    if kind is float:
        return _check_float(value)
    # Containers and links (a tag) each take one level, as cbor2's max_depth counts them.
    if depth >= _MAX_DEPTH:
        raise CodecError(f"value nested deeper than {_MAX_DEPTH} levels")
    if kind is CID:
        return value
    if kind is dict or isinstance(value, Mapping):
        keys = tuple(value)
        ordered = _SORTED_KEYS.get(keys) or _sort_keys(keys)
        out: dict[str, Any] = {}
        for key in ordered:
            item = value[key]
            out[key] = item if type(item) in _PLAIN else _prepare(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else _prepare(item, depth + 1) for item in value]
    return _prepare_other(value, depth)


_PLAIN: Final = frozenset({str, bytes, bool, type(None)})
"""Types written as they are, with nothing to check."""
_SORTED_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
"""Canonical order of key tuples seen before: most maps come in a few shapes."""


def _sort_keys(keys: tuple[Any, ...]) -> tuple[str, ...]:
    for key in keys:
        if type(key) is not str:
            raise CodecError(f"map keys must be strings, got {type(key).__name__} {key!r}")
    ordered = tuple(sorted(keys, key=_encoded_key_order))
    if len(keys) <= _CACHED_KEYS_MAX and len(_SORTED_KEYS) < _CANONICAL_KEYS_MAX:
        _SORTED_KEYS[keys] = ordered
    return ordered


def _prepare_other(value: Value, depth: int) -> Any:
    """The rare inputs: subclasses and look-alikes of the data-model types."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # IntEnum and friends
        return _prepare(int(value), depth)
    if isinstance(value, float):
        return _check_float(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Sequence):
        return [_prepare(item, depth + 1) for item in value]
    raise CodecError(f"{type(value).__name__} is not a DAG-CBOR data-model value")


def encode(value: Value) -> bytes:
    """Canonical DAG-CBOR bytes of ``value``."""
    prepared = _prepare(value, 0)
    try:
        return _ENCODERS.encoder.encode_to_bytes(prepared)
    except CodecError:
        raise
    except UnicodeEncodeError as exc:
        raise CodecError(f"string is not valid Unicode ({exc.reason})") from None
    except (cbor2.CBOREncodeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode as DAG-CBOR: {exc}") from exc


# -- decoding -----------------------------------------------------------------


def _reject_semantic(value: object, immutable: bool) -> Any:
    # cbor2 wraps this in "error decoding semantic tag N"; decode() unwraps it.
    raise CodecError("this CBOR tag is not allowed in DAG-CBOR (only tag 42 links)")


# Besides refusing non-data-model values early, this keeps hostile input away
# from cbor2's own decoders: shared references and string references could
# make the re-encoding below explode in size, bigfloats cost unbounded time.
_SEMANTIC_DECODERS: Final[dict[int, Any]] = dict.fromkeys(_CBOR2_SEMANTIC_TAGS, _reject_semantic)
_CBORTag: Final = cbor2.CBORTag

_FAST_LINKS: Final = frozenset(b"\x00" + prefix for prefix in _SHA256_V1_PREFIXES)
_MAP_VALUES: Final = _SCALARS | {dict}  # maps are checked by their own object_hook
_CANONICAL_KEYS: dict[tuple[str, ...], None] = {}
"""Key tuples already proven canonical: index nodes repeat a few shapes thousands of times."""


def _check_keys(keys: tuple[object, ...]) -> None:
    prev_len = -1
    prev = ""
    for key in keys:
        if type(key) is not str:
            raise CodecError(f"map keys must be strings, got {type(key).__name__} {key!r}")
        size = len(key) if key.isascii() else len(key.encode("utf-8"))
        if size < prev_len or (size == prev_len and key <= prev):
            what = "repeated" if key == prev else "out of canonical order"
            raise CodecError(f"map key {key!r} is {what} (after {prev!r})")
        prev_len = size
        prev = key
    if len(keys) <= _CACHED_KEYS_MAX and len(_CANONICAL_KEYS) < _CANONICAL_KEYS_MAX:
        _CANONICAL_KEYS[keys] = None  # type: ignore[index]


def _check_item(item: object) -> None:
    """A map value or list element that is not a scalar or a map (checked by its own hook)."""
    kind = type(item)
    if kind is float:
        _check_float(item)  # type: ignore[arg-type]
    elif kind is list:
        for element in item:  # type: ignore[attr-defined]
            if type(element) not in _MAP_VALUES:
                _check_item(element)
    elif kind is _CBORTag:
        tag = item.tag  # type: ignore[attr-defined]
        raise CodecError(f"CBOR tag {tag} is not allowed in DAG-CBOR (only 42)")
    else:
        raise CodecError(f"CBOR value {item!r} is not in the DAG-CBOR data model")


def _check_map(value: Any, immutable: bool) -> Any:
    """cbor2's object_hook: runs for every decoded map, innermost first."""
    if immutable:
        raise CodecError("map keys must be strings, got a map")
    keys = tuple(value)
    if keys not in _CANONICAL_KEYS:
        _check_keys(keys)
    for item in value.values():
        if type(item) not in _MAP_VALUES:
            _check_item(item)
    return value


def _link(raw: object) -> CID:
    """The CID in a tag 42's content, or CodecError for a malformed link."""
    if type(raw) is bytes and len(raw) == 37 and raw[:5] in _FAST_LINKS:
        return _sha256_cid_v1(raw[1:])
    if type(raw) is not bytes or not raw or raw[0] != 0:
        raise CodecError("tag 42 must hold a byte string starting with 0x00")
    try:
        return CID(raw[1:])
    except CodecError as exc:
        raise CodecError(f"tag 42 holds a malformed CID: {exc.message}") from None


_LINK_DECODER: Final = (None, _link)


@cbor2.shareable_decoder
def _decode_link(immutable: bool) -> tuple[None, Callable[[object], CID]]:
    """cbor2's decoder for tag 42, in the two-step form cbor2 calls without a lookup miss.

    A plain function here makes cbor2 probe it for ``_cbor2_name`` on every
    link; the failed attribute lookup costs more than decoding the link.
    """
    return _LINK_DECODER


_SEMANTIC_DECODERS[_CID_TAG] = _decode_link


def _unwrap(exc: BaseException) -> CodecError:
    """Our own error from inside a cbor2 hook, or a CodecError describing cbor2's."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, CodecError):
            return CodecError(f"not DAG-CBOR: {cause.message}")
        cause = cause.__cause__
    if isinstance(exc, cbor2.CBORDecodeEOF):
        return CodecError(f"truncated DAG-CBOR: {exc}")
    return CodecError(f"not valid CBOR: {exc}")


def decode(data: bytes) -> Value:
    """Decode strict DAG-CBOR; raise :class:`CodecError` for anything else."""
    if not isinstance(data, bytes):
        raise TypeError(f"decode takes bytes, not {type(data).__name__}")
    if not data:
        raise CodecError("empty input is not a DAG-CBOR block")
    value, canonical = _guarded(_read_and_write_back, data)
    if canonical != data:
        raise _explain_mismatch(canonical, data)
    return value


def _read_and_write_back(data: bytes) -> tuple[Any, bytes]:
    value = _loads(data, allow_duplicate_keys=True)
    if type(value) not in _MAP_VALUES:
        _check_item(value)
    return value, _ENCODERS.encoder.encode_to_bytes(value)


_T = TypeVar("_T")


def _guarded(read: Callable[[bytes], _T], data: bytes) -> _T:
    """``read(data)``, with whatever it raises for malformed input as a CodecError."""
    try:
        return read(data)
    except CodecError as exc:
        raise CodecError(f"not DAG-CBOR: {exc.message}") from None
    except RecursionError:
        raise CodecError(f"value nested deeper than {_MAX_DEPTH} levels") from None
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise _unwrap(exc) from exc


def _loads(data: bytes, *, allow_duplicate_keys: bool) -> Any:
    # Duplicate keys are left to the byte comparison on the fast path (cbor2's
    # own check costs more, and a repeated key shortens the re-encoding).
    return cbor2.loads(
        data,
        object_hook=_check_map,
        semantic_decoders=_SEMANTIC_DECODERS,
        allow_indefinite=False,
        allow_duplicate_keys=allow_duplicate_keys,
        strict_hashable_types=True,
        max_depth=_MAX_DEPTH,
    )


def _explain_mismatch(canonical: bytes, data: bytes) -> CodecError:
    try:
        _loads(data, allow_duplicate_keys=False)
    except Exception as exc:  # the only error left to find here is a repeated key
        return _unwrap(exc)
    if len(canonical) < len(data) and data.startswith(canonical):
        return CodecError(f"{len(data) - len(canonical)} bytes after the end of the DAG-CBOR value")
    at = next(
        (i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b),
        min(len(canonical), len(data)),
    )
    return CodecError(
        f"not canonical DAG-CBOR at byte {at}: found {data[at : at + 1].hex() or 'end'},"
        f" the canonical form has {canonical[at : at + 1].hex() or 'end'}"
        " (integer, length or float width, or a tag header)"
    )


def encode_block(value: Value) -> tuple[CID, bytes]:
    """Encode ``value`` and return its CIDv1 (dag-cbor, sha2-256) with the bytes."""
    data = encode(value)
    return cid_for(DAG_CBOR, data), data


def _check_block(cid: CID, data: bytes) -> None:
    if not cid.verify(data):
        raise BlockMismatchError(f"block bytes do not hash to {cid}")
    if cid.codec != DAG_CBOR:
        raise CodecError(f"{cid} is {cid.codec_name}, not dag-cbor")


def decode_block(cid: CID, data: bytes) -> Value:
    """Check that ``data`` hashes to ``cid`` and decode it strictly."""
    _check_block(cid, data)
    return decode(data)


def _reject_tag(tag: cbor2.CBORTag, immutable: bool) -> Any:
    raise CodecError(f"CBOR tag {tag.tag} is not allowed in DAG-CBOR (only 42)")


def decode_checked_block(cid: CID, data: bytes) -> Value:
    """Decode a block whose bytes were proven canonical DAG-CBOR by an earlier strict decode.

    The hash is still checked, so these are the very bytes that were proven;
    the proof itself (the per-map hook and the re-encoding) is skipped: for
    canonical bytes it finds nothing, and it costs more than the decoding.
    Tags other than 42, indefinite lengths and repeated keys are still
    refused by cbor2 itself; other values outside the data model (non-string
    map keys, NaN, ``undefined``) are not. Only for callers that know the
    earlier check happened and check the shape of what they read
    (schema/catalog.md, "Rebuilding").
    """
    _check_block(cid, data)
    return _guarded(_read_only, data)


def _read_only(data: bytes) -> Any:
    return cbor2.loads(
        data,
        semantic_decoders=_SEMANTIC_DECODERS,
        tag_hook=_reject_tag,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
        max_depth=_MAX_DEPTH,
    )
