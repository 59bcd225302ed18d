"""IPNS V2 records: creation, parsing, verification, choice of the best one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipfsbin.ipns
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.errors import IpnsError
from ipfsbin.ipns import (
    MAX_RECORD_SIZE,
    IpnsRecord,
    best_record,
    create_record,
    format_validity,
    parse_record,
    parse_validity,
    sign_record,
    verify_record,
)
from ipfsbin.ipns._protobuf import IpnsEntry, decode_entry, encode_entry
from ipfsbin.trust.keys import SigningKey

DATA = Path(__file__).parents[2] / "data" / "ipns"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KEY = SigningKey.from_seed(bytes(range(32)))
OTHER = SigningKey.from_seed(bytes(range(1, 33)))
TARGET = cid_for(RAW, b"commit 1")


def make(sequence: int = 1, **kwargs: Any) -> bytes:
    kwargs.setdefault("now", NOW)
    return create_record(KEY, TARGET, sequence, **kwargs)


def golden(label: str) -> tuple[bytes, dict[str, Any]]:
    meta = json.loads((DATA / f"kubo-{label}.json").read_text())
    return (DATA / f"kubo-{label}.ipns-record").read_bytes(), meta


def test_public_names() -> None:
    assert sorted(ipfsbin.ipns.__all__) == [
        "DEFAULT_LIFETIME",
        "DEFAULT_TTL",
        "IpnsRecord",
        "MAX_RECORD_SIZE",
        "SIGNATURE_DOMAIN",
        "best_record",
        "canonical_name",
        "create_record",
        "format_validity",
        "ipns_path",
        "parse_record",
        "parse_validity",
        "public_key_from_name",
        "sign_record",
        "verify_record",
    ]


# --- round trip ---------------------------------------------------------------------


def test_round_trip() -> None:
    raw = make(5, lifetime=timedelta(hours=1), ttl=timedelta(seconds=30))
    record = verify_record(raw, KEY.key_id, now=NOW)
    assert record.value == f"/ipfs/{TARGET}"
    assert record.cid == TARGET
    assert record.sequence == 5
    assert record.validity == NOW + timedelta(hours=1)
    assert record.validity_text == "2025-06-01T13:00:00Z"
    assert record.ttl_ns == 30_000_000_000
    assert record.ttl == timedelta(seconds=30)
    assert record.raw == raw
    assert record.public_key == KEY.public_key
    assert record.name == KEY.key_id


def test_defaults_match_kubo() -> None:
    record = parse_record(make())
    assert record.validity == NOW + timedelta(hours=48)
    assert record.ttl_ns == 5 * 60 * 10**9


def test_record_is_v2_only_with_no_pubkey_for_ed25519() -> None:
    entry = decode_entry(make(9))
    assert entry.pub_key is None  # the ed25519 key is inlined in the name
    # no V1 signature: it would sign value ++ validity ++ "EOL" with no domain prefix
    assert entry.signature_v1 is None
    assert (entry.value, entry.validity, entry.validity_type) == (None, None, None)
    assert (entry.sequence, entry.ttl) == (None, None)
    assert dagcbor.decode(entry.data or b"") == {
        "TTL": 300_000_000_000,
        "Value": f"/ipfs/{TARGET}".encode(),
        "Sequence": 9,
        "Validity": b"2025-06-03T12:00:00Z",
        "ValidityType": 0,
    }


def test_no_key_signs_undomained_bytes() -> None:
    # the legacy IPNS V1 signature was the one place a key signed bytes without a domain
    for domain in (b"", b"ipfsbin-commit-v1", b"a:b:"):
        with pytest.raises(ValueError, match="a signature domain is one tag ending in ':'"):
            KEY.sign(domain, b"/ipfs/bafy2025-06-03T12:00:00ZEOL")
    assert KEY.public_key.check(b"ipns-signature:", b"x", KEY.sign(b"ipns-signature:", b"x"))


def test_value_may_be_a_path_string() -> None:
    raw = create_record(KEY, f"/ipfs/{TARGET}/index", 1, now=NOW)
    record = verify_record(raw, KEY.key_id, now=NOW)
    assert record.value == f"/ipfs/{TARGET}/index"
    assert record.cid is None  # not a bare commit pointer


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"value": "ipfs/x"}, "expected /ipfs/<cid>"),
        ({"value": "/ipfs/notacid"}, "'notacid' is not a CID"),
        ({"sequence": -1}, "sequence must be an integer"),
        ({"sequence": 2**63}, "sequence must be an integer"),
        ({"lifetime": timedelta(0)}, "lifetime must be positive"),
        ({"lifetime": timedelta(days=4_000_000)}, "past the year 9999"),
        ({"ttl": timedelta(seconds=-1)}, "ttl must not be negative"),
        ({"now": datetime(2025, 1, 1)}, "now must be a timezone-aware datetime"),
    ],
)
def test_create_refuses_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"value": TARGET, "sequence": 1, "now": NOW}
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        create_record(KEY, args.pop("value"), args.pop("sequence"), **args)


def test_create_refuses_oversized_record() -> None:
    with pytest.raises(IpnsError, match="above the 10240-byte limit"):
        create_record(KEY, f"/ipfs/{TARGET}/" + "a" * 10200, 1, now=NOW)


# --- golden vectors made by Kubo 0.39.0 -----------------------------------------------


@pytest.mark.parametrize("label", ["v1v2", "v2"])
def test_golden_vector_from_kubo_verifies(label: str) -> None:
    raw, meta = golden(label)
    record = verify_record(raw, meta["name"], now=NOW)
    assert record.value == meta["value"]
    assert record.sequence == meta["sequence"]
    assert record.ttl_ns == meta["ttl_ns"]
    assert record.validity_text == meta["validity"]  # nanoseconds kept as signed
    assert record.validity_ns % 1000 != 0


def test_we_reproduce_kubo_v2_records_bit_for_bit() -> None:
    raw, meta = golden("v2")
    assert meta["signature_type"] == "V2"
    key = SigningKey.from_seed(bytes.fromhex(meta["seed_hex"]))
    assert key.key_id == meta["name"]
    rebuilt = sign_record(
        key,
        value=meta["value"],
        sequence=meta["sequence"],
        validity_text=meta["validity"],
        ttl_ns=meta["ttl_ns"],
    )
    assert rebuilt == raw


def test_golden_vector_under_another_name_is_refused() -> None:
    raw, _ = golden("v1v2")
    _, other_meta = golden("v2")
    with pytest.raises(IpnsError, match="signatureV2 does not verify under the key of k51"):
        verify_record(raw, other_meta["name"], now=NOW)


# --- verification failures ---------------------------------------------------------------


def test_expired_record_is_refused() -> None:
    raw = make(lifetime=timedelta(hours=1))
    assert verify_record(raw, KEY.key_id, now=NOW + timedelta(hours=1)).sequence == 1
    with pytest.raises(IpnsError, match="expired at 2025-06-01T13:00:00Z") as caught:
        verify_record(raw, KEY.key_id, now=NOW + timedelta(hours=1, microseconds=1))
    assert caught.value.hint is not None and "publish a fresh record" in caught.value.hint


def test_expiry_compares_nanoseconds() -> None:
    raw = sign_record(
        KEY,
        value=f"/ipfs/{TARGET}",
        sequence=1,
        validity_text="2025-06-01T12:00:00.000000500Z",
        ttl_ns=0,
    )
    verify_record(raw, KEY.key_id, now=NOW)  # 500 ns left
    with pytest.raises(IpnsError, match="expired"):
        verify_record(raw, KEY.key_id, now=NOW + timedelta(microseconds=1))


def test_record_signed_by_another_key_is_refused() -> None:
    raw = create_record(OTHER, TARGET, 1, now=NOW)
    with pytest.raises(IpnsError, match="does not verify under the key of") as caught:
        verify_record(raw, KEY.key_id, now=NOW)
    assert caught.value.hint is not None and "forged" in caught.value.hint


def test_tampered_signature_is_refused() -> None:
    entry = decode_entry(make())
    signature = bytearray(entry.signature_v2 or b"")
    signature[0] ^= 1
    raw = encode_entry(replace(entry, signature_v2=bytes(signature)))
    with pytest.raises(IpnsError, match="signatureV2 does not verify"):
        verify_record(raw, KEY.key_id, now=NOW)


def test_tampered_data_is_refused() -> None:
    entry = decode_entry(make())
    data = dagcbor.decode(entry.data or b"")
    data["Sequence"] = 99
    raw = encode_entry(replace(entry, data=dagcbor.encode(data)))
    assert parse_record(raw).sequence == 99  # well formed, but ...
    with pytest.raises(IpnsError, match="signatureV2 does not verify"):
        verify_record(raw, KEY.key_id, now=NOW)


@pytest.mark.parametrize(
    ("field", "legacy"),
    [
        ("value", b"/ipfs/bafkqaaa"),
        ("sequence", 99),
        ("ttl", 1),
        ("validity", b"2099-01-01T00:00:00Z"),
        ("validity_type", 1),
    ],
)
def test_legacy_field_disagreeing_with_signed_data_is_refused(field: str, legacy: Any) -> None:
    # the V1 fields of a record Kubo made are not covered by signatureV2: a relay could
    # rewrite them
    entry = replace(decode_entry(golden("v1v2")[0]), **{field: legacy})
    with pytest.raises(IpnsError, match="does not match the signed data"):
        parse_record(encode_entry(entry))


def test_embedded_pubkey_must_match_the_name() -> None:
    entry = decode_entry(make())
    with_own = encode_entry(replace(entry, pub_key=KEY.public_key.protobuf))
    assert verify_record(with_own, KEY.key_id, now=NOW).public_key == KEY.public_key
    with_other = encode_entry(replace(entry, pub_key=OTHER.public_key.protobuf))
    with pytest.raises(IpnsError, match="embeds the public key of"):
        verify_record(with_other, KEY.key_id, now=NOW)
    with pytest.raises(IpnsError, match="pubKey is unusable"):
        parse_record(encode_entry(replace(entry, pub_key=b"\x08\x00\x12\x01x")))


def _data_record(data: dict[str, Any]) -> bytes:
    """A V2-only record around ``data``, correctly signed by KEY."""
    encoded = dagcbor.encode(data)
    return encode_entry(IpnsEntry(signature_v2=KEY.sign(b"ipns-signature:", encoded), data=encoded))


GOOD_DATA: dict[str, Any] = {
    "TTL": 1,
    "Value": f"/ipfs/{TARGET}".encode(),
    "Sequence": 1,
    "Validity": b"2030-01-01T00:00:00Z",
    "ValidityType": 0,
}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"Value": None}, "has no 'Value' field"),
        ({"Sequence": "1"}, "field 'Sequence' is str, expected int"),
        ({"Sequence": -1}, "field 'Sequence' is -1, expected 0..2\\*\\*63-1"),
        ({"TTL": 2**63}, "field 'TTL' is"),
        ({"ValidityType": 1}, "validity type 1; only 0 \\(EOL\\) is known"),
        ({"Validity": b"2030-01-01 00:00:00Z"}, "not an RFC 3339 timestamp"),
        ({"Validity": b"2030-02-30T00:00:00Z"}, "is not a valid time"),
        ({"Value": b"/ipfs/\xff"}, "not text"),
        ({"Value": b"/http/example.org"}, "is not a content path"),
    ],
)
def test_malformed_data_is_refused(change: dict[str, Any], fragment: str) -> None:
    data = {**GOOD_DATA, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(IpnsError, match=fragment):
        parse_record(_data_record(data))


def test_unknown_data_fields_are_ignored_but_signed() -> None:
    raw = _data_record({**GOOD_DATA, "_ipfsbin": {"note": "hi"}})
    record = verify_record(raw, KEY.key_id, now=NOW)
    assert dagcbor.decode(record.data)["_ipfsbin"] == {"note": "hi"}


def test_non_canonical_data_is_refused() -> None:
    entry = decode_entry(make())
    data = entry.data or b""
    # a map header with an over-long length (0xb8 0x05 instead of 0xa5)
    bad = b"\xb8\x05" + data[1:]
    raw = encode_entry(replace(entry, data=bad, signature_v2=KEY.sign(b"ipns-signature:", bad)))
    with pytest.raises(IpnsError, match="not strict DAG-CBOR"):
        parse_record(raw)


def test_missing_signature_or_data_is_refused() -> None:
    entry = decode_entry(make())
    with pytest.raises(IpnsError, match="no signatureV2"):
        parse_record(encode_entry(replace(entry, signature_v2=None)))
    with pytest.raises(IpnsError, match="no data field"):
        parse_record(encode_entry(replace(entry, data=b"")))


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(IpnsError, match="above the 10240-byte limit"):
        parse_record(b"\x00" * (MAX_RECORD_SIZE + 1))


def test_bad_name_is_refused() -> None:
    with pytest.raises(IpnsError, match="not an IPNS name") as caught:
        verify_record(make(), "not-a-name", now=NOW)
    assert caught.value.hint is not None and "k51" in caught.value.hint


# --- choosing among records ----------------------------------------------------------------


def test_best_record_prefers_higher_sequence_then_later_validity() -> None:
    old = parse_record(make(1, lifetime=timedelta(days=30)))
    new = parse_record(make(2, lifetime=timedelta(hours=1)))
    same_seq_later = parse_record(make(2, lifetime=timedelta(hours=2)))
    assert best_record([new, old]) is new
    assert best_record([old, new]) is new
    assert best_record([new, same_seq_later, old]) is same_seq_later


def test_best_record_tie_break_is_deterministic() -> None:
    a = parse_record(make(3, ttl=timedelta(seconds=1)))
    b = parse_record(make(3, ttl=timedelta(seconds=2)))
    assert best_record([a, b]) is best_record([b, a])


def test_best_record_of_nothing_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        best_record([])


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("1970-01-01T00:00:01Z", 10**9),
        ("1970-01-01T01:00:00+01:00", 0),
        ("2126-10-31T02:46:20.514818533Z", 4949088380514818533),
    ],
)
def test_parse_validity(text: str, ns: int) -> None:
    assert parse_validity(text)[1] == ns


def test_format_validity_is_gos_rfc3339nano() -> None:
    assert format_validity(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"
    assert (
        format_validity(datetime(2025, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
        == "2025-01-02T03:04:05.12Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_validity(datetime(2025, 1, 2))


def test_record_object_validates() -> None:
    record = parse_record(make())
    with pytest.raises(ValueError, match="sequence must be an integer"):
        replace(record, sequence=-1)
    with pytest.raises(ValueError, match="expected /ipfs/<cid>"):
        replace(record, value="bafy")
    assert isinstance(record, IpnsRecord)
    assert "raw=" not in repr(record)


# --- robustness -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_ipns_error(raw: bytes) -> None:
    try:
        parse_record(raw)
    except IpnsError:
        pass


VALID = make(4)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
    st.integers(min_value=0, max_value=len(VALID)),
)
def test_mutated_records_only_raise_ipns_error(changes: list[tuple[int, int]], cut: int) -> None:
    mutated = bytearray(VALID)
    for position, byte in changes:
        mutated[position] = byte
    raw = bytes(mutated[: max(cut, 1)]) if cut < len(VALID) // 2 else bytes(mutated)
    try:
        record = verify_record(raw, KEY.key_id, now=NOW)
    except IpnsError:
        return
    # a mutation that still verifies can only have touched unsigned, unused bytes
    assert record.data == parse_record(VALID).data
    assert record.sequence == 4


def test_worked_example_in_schema_doc() -> None:
    """schema/ipns.md shows this record; keep the document true."""
    envelope = CID.from_text("bafyreifmksc7syrvuyujyb6jjiak237jmggauqel27qxvvwi5bmtse44zu")
    raw = create_record(KEY, envelope, 42, now=datetime(2025, 6, 1, 12, tzinfo=UTC))
    entry = decode_entry(raw)
    assert KEY.key_id == "k51qzi5uqu5dg9ufswxt229ntzdy7p4125xzv5rtyjso89ajdujg6csfxcj260"
    assert (len(raw), len(entry.data or b"")) == (211, 142)
    assert (entry.signature_v2 or b"").startswith(bytes.fromhex("776de895"))
    expected = (
        f"IPNS record for {KEY.key_id} (sequence 42) expired at 2025-06-03T12:00:00Z; "
        "it is now 2025-06-04T00:00:00Z"
    )
    with pytest.raises(IpnsError) as caught:
        verify_record(raw, KEY.key_id, now=datetime(2025, 6, 4, tzinfo=UTC))
    assert caught.value.message == expected
