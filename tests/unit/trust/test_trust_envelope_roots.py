"""A commit envelope's unsigned ``roots`` list: encoding, decoding, and what refuses it."""

from __future__ import annotations

from typing import Any

import pytest
from trust_helpers import A, B, commit_on, root_v1

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.errors import SchemaError
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import (
    MAX_ROOT_ENVELOPES,
    SignedCommit,
    load_commit,
    put_commit,
    sign_commit,
)
from ipfsbin.trust.root import SignedRoot, load_root
from ipfsbin.trust.signing import ENVELOPE_TYPE


def link(n: int) -> CID:
    return dagcbor.encode_block({"root": n})[0]


def test_roots_change_the_envelope_but_not_the_commit_id() -> None:
    root = root_v1()
    bare = commit_on(root)
    listed = sign_commit(bare, roots=[root.cid])
    assert listed.commit_id == bare.commit_id and listed.cid != bare.cid
    assert listed.roots == (root.cid,) and bare.roots == ()
    assert "roots" not in dagcbor.decode(bare.block)
    assert dagcbor.decode(listed.block)["roots"] == [root.cid]
    store = MemoryBlockStore()
    put_commit(store, listed)
    assert load_commit(store, listed.cid) == listed
    # co-signing keeps the list; no list is written as no field
    assert listed.with_signature(B).roots == (root.cid,)
    assert sign_commit(listed, roots=[]).cid == bare.cid


def test_new_commit_signed_with_roots() -> None:
    root = root_v1()
    signed = sign_commit(commit_on(root).commit, A, B, roots=[root.cid])
    assert signed.roots == (root.cid,) and signed.signers == tuple(sorted((A.key_id, B.key_id)))


def envelope_with(roots: Any) -> tuple[bytes, bytes]:
    signed = commit_on(root_v1())
    value = dagcbor.decode(signed.block)
    value["roots"] = roots
    return dagcbor.encode(value), signed.payload_block


@pytest.mark.parametrize(
    ("roots", "fragment"),
    [
        ([], "must list at least one root"),
        ("bafy", "commit envelope roots must be a list"),
        ([link(1), link(1)], "the same trust root twice"),
        ([cid_for(RAW, b"x")], "dag-cbor"),
        (["bafyrei"], "commit envelope root"),
        ([link(i) for i in range(MAX_ROOT_ENVELOPES + 1)], f"at most {MAX_ROOT_ENVELOPES}"),
    ],
    ids=["empty", "not-a-list", "repeat", "raw-link", "string", "too-many"],
)
def test_malformed_roots_are_refused(roots: Any, fragment: str) -> None:
    envelope, payload = envelope_with(roots)
    with pytest.raises(SchemaError, match=fragment):
        SignedCommit.from_blocks(envelope, payload)


def test_malformed_roots_refused_when_built_too() -> None:
    signed = commit_on(root_v1())
    with pytest.raises(SchemaError, match="the same trust root twice"):
        sign_commit(signed, roots=[link(1), link(1)])


def test_root_envelopes_do_not_take_roots() -> None:
    root = root_v1()
    value = dagcbor.decode(root.block)
    value["roots"] = [root.cid]
    with pytest.raises(SchemaError, match="unknown field"):
        SignedRoot.from_blocks(dagcbor.encode(value), root.payload_block)
    store = MemoryBlockStore()
    cid, block = dagcbor.encode_block(value)
    store.put_many([(cid, block), (root.root_id, root.payload_block)])
    with pytest.raises(SchemaError, match="unknown field"):
        load_root(store, cid)
    assert value["type"] == ENVELOPE_TYPE
