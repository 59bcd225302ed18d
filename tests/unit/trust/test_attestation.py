"""Attestations against the golden vectors in schema/examples/manifest/."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.errors import SchemaError, SignatureError, ThresholdError, TrustError
from ipfsbin.manifest import Manifest
from ipfsbin.trust import attestation as attestation_module
from ipfsbin.trust.attestation import (
    ATTESTATION_DOMAIN,
    Attestation,
    AttestationStatement,
    attest,
    check_attestation,
    verify_attestation,
)
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.signing import Role

EXAMPLES = Path(__file__).resolve().parents[3] / "schema" / "examples" / "manifest"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return doc


def _blocks(doc: dict[str, Any]) -> tuple[CID, bytes, bytes]:
    return (
        CID.from_text(doc["envelope"]["cid"]),
        bytes.fromhex(doc["envelope"]["block"]),
        bytes.fromhex(doc["statement"]["block"]),
    )


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return _load("attestation-hello")


@pytest.fixture(scope="module")
def key(example: dict[str, Any]) -> SigningKey:
    return SigningKey.from_seed(bytes.fromhex(example["key_seed"]))


@pytest.fixture(scope="module")
def manifest() -> tuple[CID, Manifest]:
    doc = _load("manifest-hello")
    cid = CID.from_text(doc["cid"])
    return cid, Manifest.from_block(cid, bytes.fromhex(doc["block"]))


@pytest.fixture(scope="module")
def decoded(example: dict[str, Any]) -> Attestation:
    cid, envelope, statement = _blocks(example)
    return Attestation.from_blocks(envelope, statement, cid=cid)


def test_public_names() -> None:
    assert sorted(attestation_module.__all__) == [
        "ATTESTATION_DOMAIN",
        "ATTESTATION_TYPE",
        "Attestation",
        "AttestationCheck",
        "AttestationStatement",
        "attest",
        "check_attestation",
        "verify_attestation",
    ]


def test_example_decodes_and_verifies(
    example: dict[str, Any], decoded: Attestation, manifest: tuple[CID, Manifest]
) -> None:
    assert str(decoded.payload_id) == example["statement"]["cid"]
    assert decoded.signers == (example["key_id"],)
    assert decoded.statement.manifest == manifest[0]
    check = verify_attestation(decoded, manifest=manifest)
    assert check.ok and check.valid == (example["key_id"],) and check.manifest_ok


def test_signing_is_deterministic(
    example: dict[str, Any], key: SigningKey, manifest: tuple[CID, Manifest]
) -> None:
    # Re-publishing the same bytes must create the very same blocks.
    signed = attest(AttestationStatement.for_manifest(*manifest), key)
    assert str(signed.cid) == example["envelope"]["cid"]
    assert signed.block.hex() == example["envelope"]["block"]
    assert signed.payload_block.hex() == example["statement"]["block"]


def test_signature_covers_domain_and_statement_block(decoded: Attestation, key: SigningKey) -> None:
    sig = decoded.signatures[0].sig
    assert key.public_key.check(ATTESTATION_DOMAIN, decoded.payload_block, sig)
    # The same signature is worthless in any other domain.
    assert not key.public_key.check(b"ipfsbin-commit-v1:", decoded.payload_block, sig)


def test_forged_example_is_refused(example: dict[str, Any]) -> None:
    doc = _load("invalid-attestation-forged")
    cid, envelope, statement = _blocks(doc)
    forged = Attestation.from_blocks(envelope, statement, cid=cid)
    check = check_attestation(forged)
    assert not check.ok and check.report.invalid == (example["key_id"],)
    with pytest.raises(SignatureError, match=doc["error"]["message"]):
        verify_attestation(forged)


def test_role_and_allowed_keys(decoded: Attestation, example: dict[str, Any]) -> None:
    other = SigningKey.from_seed(b"\x07" * 32)
    with pytest.raises(ThresholdError, match="signed by 0 of 1"):
        verify_attestation(decoded, allowed_keys=[other.key_id])
    assert verify_attestation(decoded, allowed_keys=[example["key_id"]]).ok
    role = Role.of("builders", [other.key_id, example["key_id"]], 2)
    with pytest.raises(ThresholdError, match="signed by 1 of 2"):
        verify_attestation(decoded, role=role)
    with pytest.raises(ValueError, match="not both"):
        check_attestation(decoded, role=role, allowed_keys=[])


def test_mismatching_manifest_is_refused(
    decoded: Attestation, manifest: tuple[CID, Manifest]
) -> None:
    doc = _load("manifest-libfoo")
    other_cid = CID.from_text(doc["cid"])
    other = Manifest.from_block(other_cid, bytes.fromhex(doc["block"]))
    check = check_attestation(decoded, manifest=(other_cid, other))
    assert check.manifest_ok is False and not check.ok
    assert any("sha256" in p for p in check.problems)
    with pytest.raises(TrustError, match="does not match manifest"):
        verify_attestation(decoded, manifest=(other_cid, other))
    # A manifest that does not encode to the CID it is paired with is caught too.
    tampered = dataclasses.replace(manifest[1], size=manifest[1].size + 1)
    check = check_attestation(decoded, manifest=(manifest[0], tampered))
    assert check.manifest_ok is False


def test_tampered_statement_block_is_refused(example: dict[str, Any]) -> None:
    cid, envelope, statement = _blocks(example)
    value = dagcbor.decode(statement)
    value["size"] += 1
    with pytest.raises(Exception, match="do not hash"):
        Attestation.from_blocks(envelope, dagcbor.encode(value), cid=cid)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.__setitem__("time", 0), "unknown field"),
        (lambda v: v.pop("size"), "lacks the field"),
        (lambda v: v.__setitem__("type", "ipfsbin/attestation/2"), "expected"),
        (lambda v: v.__setitem__("sha256", b"\x00" * 31), "32 bytes"),
        (lambda v: v.__setitem__("size", 0), "positive integer"),
        (lambda v: v.__setitem__("manifest", cid_for(RAW, b"m")), "dag-cbor link"),
        (lambda v: v.__setitem__("binpkg", cid_for(RAW, b"other")), "digest is not"),
        (lambda v: v.__setitem__("binpkg", "bafy..."), "must be a link"),
    ],
)
def test_bad_statements(example: dict[str, Any], change: Any, message: str) -> None:
    value = dagcbor.decode(bytes.fromhex(example["statement"]["block"]))
    change(value)
    with pytest.raises(SchemaError, match=message):
        AttestationStatement.from_dag(value)


def test_envelope_of_other_kind_is_refused(example: dict[str, Any]) -> None:
    _, envelope, statement = _blocks(example)
    value = dagcbor.decode(envelope)
    value["type"] = "ipfsbin/attestation/1"
    with pytest.raises(SchemaError, match="envelope type"):
        Attestation.from_blocks(dagcbor.encode(value), statement)


def test_statement_links_are_dag_cbor() -> None:
    with pytest.raises(SchemaError, match="descriptor must be a dag-cbor link"):
        AttestationStatement(
            descriptor=cid_for(RAW, b"d"),
            manifest=cid_for(DAG_CBOR, b"m"),
            binpkg=cid_for(RAW, b"b"),
            sha256=b"\x00" * 32,
            size=1,
        )
