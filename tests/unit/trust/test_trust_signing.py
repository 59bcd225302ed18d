"""Roles, signatures, envelopes, co-signing and signature reports."""

from __future__ import annotations

import pytest
from trust_helpers import T0, A, B, C, D, commit_on, root_v1

from ipfsbin.errors import SchemaError, SignatureError, ThresholdError
from ipfsbin.trust.commit import SignedCommit, sign_commit
from ipfsbin.trust.signing import (
    Role,
    Signature,
    check_signatures,
    cosign,
    public_key_of,
    verify_signatures,
)

ROOT = root_v1()
MAINTAINERS = ROOT.root.maintainers  # A, B, C; threshold 2


def test_role_of_sorts_and_deduplicates() -> None:
    role = Role.of("maintainers", [C.public_key, A.public_key, A.key_id], 2)
    assert role.keys == tuple(sorted([A.key_id, C.key_id]))
    assert A.key_id in role


@pytest.mark.parametrize("threshold", [0, 4])
def test_role_threshold_out_of_range(threshold: int) -> None:
    with pytest.raises(SchemaError, match="threshold must be between 1 and the 3"):
        Role.of("maintainers", [A.public_key, B.public_key, C.public_key], threshold)


def test_role_keys_must_be_sorted() -> None:
    keys = tuple(sorted([A.key_id, B.key_id], reverse=True))
    with pytest.raises(SchemaError, match="ascending order"):
        Role(name="builders", keys=keys, threshold=1)


def test_non_canonical_key_id_refused() -> None:
    other_spelling = A.public_key.key_cid.encode("base32")
    with pytest.raises(SchemaError, match="not in canonical form"):
        public_key_of(other_spelling)
    with pytest.raises(SchemaError, match="not an ed25519 key ID"):
        public_key_of("k51-not-a-key")


def test_signature_must_be_64_bytes() -> None:
    with pytest.raises(SchemaError, match="must be 64 bytes, got 63"):
        Signature(key=A.key_id, sig=bytes(63))


def test_two_of_three() -> None:
    commit = commit_on(ROOT, A)
    report = check_signatures(commit, MAINTAINERS)
    assert not report.met
    assert report.valid == (A.key_id,)
    assert set(report.missing) == {B.key_id, C.key_id}
    assert (
        report.describe()
        == f"commit {commit.commit_id} is signed by 1 of 2 required maintainers keys"
    )
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required maintainers keys"):
        verify_signatures(commit, MAINTAINERS)
    both = cosign(commit, C)
    assert verify_signatures(both, MAINTAINERS).valid == tuple(sorted([A.key_id, C.key_id]))
    everyone = cosign(both, B)
    assert len(check_signatures(everyone, MAINTAINERS).valid) == 3


def test_unknown_signers_do_not_count() -> None:
    commit = commit_on(ROOT, A, D)
    report = check_signatures(commit, MAINTAINERS)
    assert report.unknown == (D.key_id,)
    assert not report.met
    with pytest.raises(ThresholdError, match="1 of 2"):
        verify_signatures(commit, MAINTAINERS)


def test_cosign_is_idempotent_and_keeps_identity() -> None:
    once = commit_on(ROOT, A)
    twice = cosign(once, A)
    assert twice is once
    assert len(check_signatures(twice, MAINTAINERS).valid) == 1
    with_b = cosign(once, B)
    assert with_b.commit_id == once.commit_id
    assert with_b.cid != once.cid
    assert cosign(with_b, B).cid == with_b.cid


def test_cosign_order_does_not_matter() -> None:
    base = commit_on(ROOT, A)
    assert cosign(cosign(base, B), C).cid == cosign(cosign(base, C), B).cid


def test_forged_signature_raises_even_above_threshold() -> None:
    signed = commit_on(ROOT, A, B, C)
    sigs = list(signed.signatures)
    sigs[0] = Signature(key=sigs[0].key, sig=bytes(64))
    forged = SignedCommit.create(signed.commit, sigs)
    report = check_signatures(forged, MAINTAINERS)
    assert report.invalid == (sigs[0].key,) and report.met
    with pytest.raises(SignatureError, match=f"signature by {sigs[0].key} does not verify"):
        verify_signatures(forged, MAINTAINERS)


def test_cosign_replaces_a_bad_signature_by_the_same_key() -> None:
    signed = commit_on(ROOT, A)
    broken = SignedCommit.create(signed.commit, [Signature(key=A.key_id, sig=bytes(64))])
    repaired = sign_commit(broken, A)
    assert repaired.cid == signed.cid


def test_root_signature_is_not_a_commit_signature() -> None:
    # the same key signing the same bytes under another domain must not verify
    commit = commit_on(ROOT, A)
    cross = A.sign(b"ipfsbin-root-v1:", commit.payload_block)
    mixed = SignedCommit.create(commit.commit, [Signature(key=A.key_id, sig=cross)])
    assert check_signatures(mixed, MAINTAINERS).invalid == (A.key_id,)


def test_envelope_roundtrip_and_canonical_order() -> None:
    signed = commit_on(ROOT, A, B, time=T0)
    again = SignedCommit.from_blocks(signed.block, signed.payload_block, cid=signed.cid)
    assert again == signed
    assert list(again.signers) == sorted(again.signers)
