"""IPNS V2 records: create, parse, verify and choose the best one.

A record is the ``IpnsEntry`` protobuf whose ``data`` field holds DAG-CBOR
``{TTL, Value, Sequence, Validity, ValidityType}`` signed (``signatureV2``)
with ed25519 over ``b"ipns-signature:" + data``. Records we create are V2
only (Kubo's ``name publish --v1compat=false``): the legacy V1 signature covers
``value ++ validity ++ "EOL"`` with no domain prefix, so making one would sign
undomained bytes with a key that also signs ipfsbin statements. Records others
made with V1 fields are still read (their V1 signature is never used).

In ipfsbin a record is only a pointer to the newest index commit: all trust
comes from the commit's own signatures (see ``schema/ipns.md``). Verification
here answers one question: did the holder of the name's key say "this path,
sequence n, valid until t"?
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, TypeVar

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, IpnsError, SignatureError
from ipfsbin.ipns._protobuf import IpnsEntry, decode_entry, encode_entry
from ipfsbin.ipns.name import public_key_from_name
from ipfsbin.trust.keys import PublicKey, SigningKey

__all__ = [
    "DEFAULT_LIFETIME",
    "DEFAULT_TTL",
    "MAX_RECORD_SIZE",
    "SIGNATURE_DOMAIN",
    "IpnsRecord",
    "best_record",
    "create_record",
    "format_validity",
    "parse_record",
    "parse_validity",
    "sign_record",
    "verify_record",
]

MAX_RECORD_SIZE: Final = 10 * 1024
SIGNATURE_DOMAIN: Final = b"ipns-signature:"
DEFAULT_LIFETIME: Final = timedelta(hours=48)  # DHT servers drop records after 48 h anyway
DEFAULT_TTL: Final = timedelta(minutes=5)

_T = TypeVar("_T")
_EOL: Final = 0
# Go reads these integers as int64 (go-ipld-prime ``AsInt``), so larger ones
# would be read differently by Kubo than by us.
_MAX_INT64: Final = 2**63 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_NAMESPACES: Final = ("ipfs", "ipld", "ipns")


# --- validity timestamps ---------------------------------------------------


def parse_validity(text: str) -> tuple[datetime, int]:
    """Parse an RFC 3339 timestamp: (UTC datetime to the microsecond, exact ns since 1970)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise IpnsError(
            f"IPNS validity {text!r} is not an RFC 3339 timestamp "
            "(expected e.g. 2025-01-02T03:04:05.123456789Z)"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        if zone == "Z":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        whole = datetime(year, month, day, hour, minute, second, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise IpnsError(f"IPNS validity {text!r} is not a valid time: {exc}") from exc
    nanos = int(fraction.ljust(9, "0"))
    seconds = (whole - _EPOCH) // timedelta(seconds=1)
    return whole.replace(microsecond=nanos // 1000), seconds * 1_000_000_000 + nanos


def format_validity(moment: datetime) -> str:
    """Go's ``RFC3339Nano`` in UTC (trailing zeros of the fraction dropped), as Kubo writes."""
    if moment.tzinfo is None:
        raise ValueError("validity must be a timezone-aware datetime")
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        + (f".{fraction}" if fraction else "")
        + "Z"
    )


def _ns_since_epoch(moment: datetime) -> int:
    return ((moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)) * 1000


# --- values ------------------------------------------------------------------


def _path_problem(path: str) -> str | None:
    """Why ``path`` is not a content path Kubo would publish, or None when it is one."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "" or parts[1] not in _NAMESPACES or not parts[2]:
        return "expected /ipfs/<cid>, /ipld/<cid> or /ipns/<name>"
    if parts[1] != "ipns":
        try:
            CID.from_text(parts[2])
        except CodecError:
            return f"{parts[2]!r} is not a CID"
    return None


# --- the record ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class IpnsRecord:
    """A parsed IPNS V2 record.

    ``public_key`` is the signer's key once :func:`verify_record` has checked
    the signature (or the key embedded in the record, if any, before that).
    ``raw`` is the record as received; ``data`` the signed DAG-CBOR inside it.
    """

    value: str
    sequence: int
    validity_text: str
    ttl_ns: int
    data: bytes = field(repr=False)
    signature_v2: bytes = field(repr=False)
    raw: bytes = field(repr=False)
    public_key: PublicKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for what, number in (("sequence", self.sequence), ("ttl_ns", self.ttl_ns)):
            if type(number) is not int or not 0 <= number <= _MAX_INT64:
                raise ValueError(f"{what} must be an integer in 0..2**63-1, got {number!r}")
        problem = _path_problem(self.value)
        if problem is not None:
            raise ValueError(f"record value {self.value!r}: {problem}")
        parse_validity(self.validity_text)
        if len(self.raw) > MAX_RECORD_SIZE:
            raise ValueError(f"record of {len(self.raw)} bytes exceeds {MAX_RECORD_SIZE}")

    @property
    def validity(self) -> datetime:
        """End of validity in UTC (microseconds; the exact value is :attr:`validity_ns`)."""
        return parse_validity(self.validity_text)[0]

    @property
    def validity_ns(self) -> int:
        """End of validity in nanoseconds since 1970, exactly as signed."""
        return parse_validity(self.validity_text)[1]

    @property
    def ttl(self) -> timedelta:
        return timedelta(microseconds=self.ttl_ns // 1000)

    @property
    def cid(self) -> CID | None:
        """The CID when the value is exactly ``/ipfs/<cid>`` (a commit pointer), else None."""
        parts = self.value.split("/")
        if len(parts) != 3 or parts[1] != "ipfs":
            return None
        return CID.from_text(parts[2])

    @property
    def name(self) -> str | None:
        """The IPNS name (``k51…``) of the signer, when known."""
        return None if self.public_key is None else self.public_key.key_id

    def expired(self, now: datetime) -> bool:
        return _ns_since_epoch(_aware(now, "now")) > self.validity_ns


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment


# --- creation ------------------------------------------------------------------


def create_record(
    key: SigningKey,
    value: str | CID,
    sequence: int,
    *,
    lifetime: timedelta = DEFAULT_LIFETIME,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> bytes:
    """Sign a V2 record pointing the name of ``key`` at ``value`` (a CID means ``/ipfs/<cid>``).

    The record is valid until ``now + lifetime``.
    """
    path = f"/ipfs/{value}" if isinstance(value, CID) else value
    if not isinstance(path, str):
        raise TypeError(f"value must be a path string or a CID, not {type(value).__name__}")
    problem = _path_problem(path)
    if problem is not None:
        raise ValueError(f"cannot publish {path!r}: {problem}")
    if type(sequence) is not int or not 0 <= sequence <= _MAX_INT64:
        raise ValueError(f"sequence must be an integer in 0..2**63-1, got {sequence!r}")
    if lifetime <= timedelta(0):
        raise ValueError(f"lifetime must be positive, got {lifetime}")
    if ttl < timedelta(0):
        raise ValueError(f"ttl must not be negative, got {ttl}")
    moment = datetime.now(UTC) if now is None else _aware(now, "now")
    try:
        end = moment + lifetime
    except OverflowError:
        raise ValueError(f"lifetime {lifetime} reaches past the year 9999") from None
    return sign_record(
        key,
        value=path,
        sequence=sequence,
        validity_text=format_validity(end),
        ttl_ns=(ttl // timedelta(microseconds=1)) * 1000,
    )


def sign_record(
    key: SigningKey,
    *,
    value: str,
    sequence: int,
    validity_text: str,
    ttl_ns: int,
) -> bytes:
    """The lower-level form of :func:`create_record`: every field given exactly.

    Ed25519 signatures are deterministic, so for the same key and fields this
    reproduces a record Kubo made with ``--v1compat=false`` bit for bit (the
    golden-vector tests rely on it). There is no V1 option on purpose.
    """
    value_bytes = value.encode("utf-8")
    validity_bytes = validity_text.encode("ascii")
    data = dagcbor.encode(
        {
            "TTL": ttl_ns,
            "Value": value_bytes,
            "Sequence": sequence,
            "Validity": validity_bytes,
            "ValidityType": _EOL,
        }
    )
    raw = encode_entry(IpnsEntry(signature_v2=key.sign(SIGNATURE_DOMAIN, data), data=data))
    record = parse_record(raw)  # the same checks a reader will apply
    if record.sequence != sequence or record.validity_text != validity_text:
        raise AssertionError("record did not round-trip")  # pragma: no cover
    return raw


# --- parsing and verification ------------------------------------------------------


def _field(data: dict[str, object], key: str, kind: type[_T]) -> _T:
    if key not in data:
        raise IpnsError(f"IPNS record data has no {key!r} field")
    item = data[key]
    if type(item) is not kind:  # `is`, so that a bool never passes for an int
        raise IpnsError(
            f"IPNS record data field {key!r} is {type(item).__name__}, expected {kind.__name__}"
        )
    return item


def _int_field(data: dict[str, object], key: str) -> int:
    number = _field(data, key, int)
    if not 0 <= number <= _MAX_INT64:
        raise IpnsError(f"IPNS record data field {key!r} is {number}, expected 0..2**63-1")
    return number


def _check_legacy(entry: IpnsEntry, data: dict[str, object]) -> None:
    """Legacy V1 fields, when present, must say exactly what the signed data says."""
    if entry.signature_v1 is None and entry.value is None:
        return
    # absent fields read as protobuf defaults, as Go's getters return them
    pairs = (
        ("value", entry.value or b"", "Value"),
        ("validity", entry.validity or b"", "Validity"),
        ("validityType", entry.validity_type or 0, "ValidityType"),
        ("sequence", entry.sequence or 0, "Sequence"),
        ("ttl", entry.ttl or 0, "TTL"),
    )
    for legacy_name, legacy_value, key in pairs:
        if legacy_value != data[key]:
            raise IpnsError(
                f"IPNS record legacy field {legacy_name!r} ({legacy_value!r}) does not match "
                f"the signed data[{key!r}] ({data[key]!r})"
            )


def parse_record(raw: bytes) -> IpnsRecord:
    """Decode and check the structure of a record, without checking its signature.

    Raises :class:`IpnsError` for anything but a well-formed V2 record. Use
    :func:`verify_record` before trusting what it says.
    """
    if not isinstance(raw, bytes):
        raise TypeError(f"parse_record takes bytes, not {type(raw).__name__}")
    if len(raw) > MAX_RECORD_SIZE:
        raise IpnsError(f"IPNS record is {len(raw)} bytes, above the {MAX_RECORD_SIZE}-byte limit")
    entry = decode_entry(raw)
    if not entry.signature_v2:
        raise IpnsError("IPNS record has no signatureV2 (V1-only records are not accepted)")
    if not entry.data:
        raise IpnsError("IPNS record has no data field (V1-only records are not accepted)")
    try:
        data = dagcbor.decode(entry.data)
    except CodecError as exc:
        raise IpnsError(f"IPNS record data is not strict DAG-CBOR: {exc.message}") from exc
    if type(data) is not dict:
        raise IpnsError(f"IPNS record data is a {type(data).__name__}, expected a map")
    # extra keys are allowed by the spec ("MUST ignore unexpected fields"); they stay in `data`
    value_bytes = _field(data, "Value", bytes)
    validity_bytes = _field(data, "Validity", bytes)
    validity_type = _int_field(data, "ValidityType")
    sequence = _int_field(data, "Sequence")
    ttl_ns = _int_field(data, "TTL")
    if validity_type != _EOL:
        raise IpnsError(f"IPNS record has validity type {validity_type}; only 0 (EOL) is known")
    try:
        value = value_bytes.decode("utf-8")
        validity_text = validity_bytes.decode("ascii")
    except UnicodeDecodeError as exc:
        raise IpnsError(f"IPNS record value or validity is not text: {exc}") from exc
    problem = _path_problem(value)
    if problem is not None:
        raise IpnsError(f"IPNS record value {value!r} is not a content path: {problem}")
    parse_validity(validity_text)
    _check_legacy(entry, data)
    public_key = None
    if entry.pub_key is not None:
        try:
            public_key = PublicKey.from_protobuf(entry.pub_key)
        except SignatureError as exc:
            raise IpnsError(f"IPNS record pubKey is unusable: {exc.message}") from exc
    return IpnsRecord(
        value=value,
        sequence=sequence,
        validity_text=validity_text,
        ttl_ns=ttl_ns,
        data=entry.data,
        signature_v2=entry.signature_v2,
        raw=raw,
        public_key=public_key,
    )


def verify_record(raw: bytes, name: str, *, now: datetime | None = None) -> IpnsRecord:
    """Parse ``raw`` and check it is a live record signed by the key of ``name``.

    Checks, in the spec's order: size, structure, the V2 signature under the
    key inlined in ``name`` (and any embedded pubKey matches it), legacy fields
    consistent with the signed data, and that the validity has not passed at
    ``now`` (default: the current time). Returns the record with
    ``public_key`` set; raises :class:`IpnsError` otherwise.
    """
    key = public_key_from_name(name)
    record = parse_record(raw)
    if record.public_key is not None and record.public_key != key:
        raise IpnsError(
            f"IPNS record embeds the public key of {record.public_key.key_id}, "
            f"not of the name {key.key_id}"
        )
    if not key.check(SIGNATURE_DOMAIN, record.data, record.signature_v2):
        raise IpnsError(
            f"IPNS record signatureV2 does not verify under the key of {key.key_id}",
            hint="the record was forged, damaged, or published for another name",
        )
    moment = datetime.now(UTC) if now is None else _aware(now, "now")
    if record.expired(moment):
        raise IpnsError(
            f"IPNS record for {key.key_id} (sequence {record.sequence}) expired at "
            f"{record.validity_text}; it is now {format_validity(moment)}",
            hint="the publisher must publish a fresh record; until then keep the last "
            "verified commit",
        )
    return replace(record, public_key=key)


def best_record(records: Iterable[IpnsRecord]) -> IpnsRecord:
    """The record the spec prefers: higher sequence, then later validity.

    All records here have a V2 signature (parsing requires it), which is the
    spec's first criterion. Ties are broken on the raw bytes, as boxo does, so
    every node picks the same one. Pass only verified records of one name.
    """
    candidates = list(records)
    if not candidates:
        raise ValueError("best_record needs at least one record")
    return max(candidates, key=lambda r: (r.sequence, r.validity_ns, r.raw))
