"""The public names of the trust modules, pinned so that changing them is a decision."""

from __future__ import annotations

import pytest

from ipfsbin.trust import commit, root, signing, state

EXPECTED = {
    signing: [
        "ENVELOPE_TYPE",
        "Payload",
        "Role",
        "Signature",
        "SignatureReport",
        "Signed",
        "check_signatures",
        "cosign",
        "load_signed_blocks",
        "public_key_of",
        "put_signed",
        "verify_not_forged",
        "verify_signatures",
    ],
    root: [
        "ROLE_NAMES",
        "ROOT_DOMAIN",
        "ROOT_TYPE",
        "Root",
        "SignedRoot",
        "load_root",
        "make_root",
        "put_root",
        "sign_root",
    ],
    commit: [
        "COMMIT_DOMAIN",
        "COMMIT_TYPE",
        "DEFAULT_COMMIT_LIFETIME",
        "MAX_CHANGE_PARTS",
        "MAX_MESSAGE_BYTES",
        "MAX_ROOT_ENVELOPES",
        "Commit",
        "SignedCommit",
        "iter_history",
        "load_commit",
        "load_commit_payload",
        "make_commit",
        "put_commit",
        "sign_commit",
    ],
    state: ["DEFAULT_MAX_WALK", "RootPin", "TrustedChain"],
}


@pytest.mark.parametrize("module", list(EXPECTED), ids=lambda m: m.__name__)
def test_exported_names(module: object) -> None:
    assert sorted(module.__all__) == sorted(EXPECTED[module])  # type: ignore[attr-defined,index]
    for name in module.__all__:  # type: ignore[attr-defined]
        assert hasattr(module, name)


def test_domains_are_distinct_and_versioned() -> None:
    assert root.ROOT_DOMAIN == b"ipfsbin-root-v1:"
    assert commit.COMMIT_DOMAIN == b"ipfsbin-commit-v1:"
