"""IPNS records checked both ways against real Kubo daemons.

Our records must be stored and served by Kubo, Kubo's records must verify
with our code, and both sides must refuse forged and replayed records.

Found on Kubo 0.39.0: ``routing/put`` answers success even for a record that
fails validation (Kubo wraps every router with ``IgnoreError``), and simply
does not store it. So Kubo's own verdict is read from ``name/inspect
--verify``, and that nothing was stored is checked with ``routing/get`` and
``name/resolve``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.errors import IpnsError
from ipfsbin.ipns import (
    best_record,
    create_record,
    ipns_path,
    parse_record,
    sign_record,
    verify_record,
)
from ipfsbin.ipns._protobuf import decode_entry, encode_entry
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.trust.keys import SigningKey

pytestmark = pytest.mark.integration

Pair = tuple[KuboClient, KuboClient]


@pytest.fixture(scope="module")
def pair(kubo_nodes: Callable[..., list[ManagedNode]]) -> Any:
    first, second = kubo_nodes(2)
    with first.client() as a, second.client() as b:
        yield a, b


def target(label: str) -> CID:
    return cid_for(RAW, label.encode())


def put(client: KuboClient, name: str, raw: bytes) -> None:
    client.routing_put(ipns_path(name), raw, allow_offline=True, timeout=timedelta(seconds=20))


def resolve(client: KuboClient, name: str) -> str:
    return client.name_resolve(name, nocache=True, dht_timeout=timedelta(seconds=10))


def kubo_inspect(client: KuboClient, raw: bytes, name: str) -> dict[str, Any]:
    """Kubo's own validation of a record (``ipfs name inspect --verify``)."""
    answer = client.http.post(
        "/api/v0/name/inspect",
        params=[("verify", name), ("dump", "false")],
        files={"file": ("record", raw)},
    )
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def test_kubo_stores_and_serves_our_record(pair: Pair) -> None:
    a, b = pair
    key = SigningKey.generate()
    raw = create_record(key, target("ours"), 1, lifetime=timedelta(hours=1))

    put(a, key.key_id, raw)

    assert resolve(b, key.key_id) == f"/ipfs/{target('ours')}"
    assert b.routing_get(ipns_path(key.key_id)) == raw  # stored verbatim
    verdict = kubo_inspect(b, raw, key.key_id)
    assert verdict["Validation"]["Valid"] is True
    assert verdict["SignatureType"] == "V2"


def test_we_verify_a_record_kubo_made(pair: Pair) -> None:
    a, b = pair
    key = SigningKey.generate()
    info = a.key_import("made-by-kubo", key.to_pem())
    assert info.id == key.key_id
    before = datetime.now(UTC)

    a.name_publish(
        target("kubo"),
        key="made-by-kubo",
        lifetime=timedelta(hours=2),
        ttl=timedelta(seconds=45),
        sequence=12,
        allow_offline=True,
    )
    raw = b.routing_get(ipns_path(key.key_id))

    after = datetime.now(UTC)
    record = verify_record(raw, key.key_id)
    assert record.value == f"/ipfs/{target('kubo')}"
    assert record.cid == target("kubo")
    assert record.sequence == 12
    assert record.ttl == timedelta(seconds=45)
    slack = timedelta(seconds=1)
    assert before + timedelta(hours=2) - slack <= record.validity <= after + timedelta(hours=2)
    # same key, same fields: our signer writes exactly Kubo's bytes
    rebuilt = sign_record(
        key,
        value=record.value,
        sequence=record.sequence,
        validity_text=record.validity_text,
        ttl_ns=record.ttl_ns,
    )
    assert rebuilt == raw


def test_forged_records_are_refused_by_us_and_by_kubo(pair: Pair) -> None:
    a, b = pair
    key = SigningKey.generate()
    genuine = create_record(key, target("genuine"), 1, lifetime=timedelta(hours=1))
    put(a, key.key_id, genuine)

    # a higher sequence would win if either forgery were accepted
    by_other_key = create_record(SigningKey.generate(), target("evil"), 99)
    entry = decode_entry(create_record(key, target("evil"), 99))
    signature = bytearray(entry.signature_v2 or b"")
    signature[10] ^= 0x40
    bad_signature = encode_entry(replace(entry, signature_v2=bytes(signature)))

    for forged in (by_other_key, bad_signature):
        with pytest.raises(IpnsError, match="signatureV2 does not verify under the key of"):
            verify_record(forged, key.key_id)
        verdict = kubo_inspect(a, forged, key.key_id)["Validation"]
        assert verdict["Valid"] is False
        assert verdict["Reason"] == "signature verification failed"

        put(a, key.key_id, forged)  # Kubo answers success but drops it
        put(b, key.key_id, forged)

    for client in (a, b):
        assert client.routing_get(ipns_path(key.key_id)) == genuine
        assert resolve(client, key.key_id) == f"/ipfs/{target('genuine')}"


def test_a_replayed_older_record_does_not_replace_the_newer(pair: Pair) -> None:
    a, b = pair
    key = SigningKey.generate()
    older = create_record(key, target("v1"), 1, lifetime=timedelta(hours=3))
    newer = create_record(key, target("v2"), 2, lifetime=timedelta(hours=1))
    put(a, key.key_id, older)
    assert resolve(b, key.key_id) == f"/ipfs/{target('v1')}"

    put(a, key.key_id, newer)
    put(a, key.key_id, older)  # the replay, on both nodes
    put(b, key.key_id, older)

    for client in (a, b):
        assert client.routing_get(ipns_path(key.key_id)) == newer
        assert resolve(client, key.key_id) == f"/ipfs/{target('v2')}"
    # the older one is still valid and expires later, yet sequence decides
    assert kubo_inspect(a, older, key.key_id)["Validation"]["Valid"] is True
    chosen = best_record([parse_record(older), parse_record(newer)])
    assert chosen.raw == newer


def test_an_expired_record_is_refused_by_us_and_by_kubo(pair: Pair) -> None:
    a, _ = pair
    key = SigningKey.generate()
    yesterday = datetime.now(UTC) - timedelta(days=1)
    expired = create_record(key, target("stale"), 1, lifetime=timedelta(hours=1), now=yesterday)

    with pytest.raises(IpnsError, match="expired at"):
        verify_record(expired, key.key_id)
    verdict = kubo_inspect(a, expired, key.key_id)["Validation"]
    assert verdict["Valid"] is False
    assert verdict["Reason"] == "record is expired"
