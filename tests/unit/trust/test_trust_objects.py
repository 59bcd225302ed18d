"""Roots and commits as values: building, storing, loading, and refusing bad blocks."""

from __future__ import annotations

from typing import Any

import pytest
from trust_helpers import DAY, FAR, INDEX, T0, A, B, C, D, chain_of, commit_on, root_v1

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError, CodecError, SchemaError
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import (
    COMMIT_TYPE,
    DEFAULT_COMMIT_LIFETIME,
    Commit,
    SignedCommit,
    iter_history,
    load_commit,
    load_commit_payload,
    make_commit,
    put_commit,
    sign_commit,
)
from ipfsbin.trust.root import Root, SignedRoot, load_root, make_root, put_root
from ipfsbin.trust.signing import ENVELOPE_TYPE


def envelope_for(
    payload: dict[str, Any], signatures: list[Any] | None = None
) -> tuple[bytes, bytes]:
    payload_id, payload_block = dagcbor.encode_block(payload)
    envelope = dagcbor.encode(
        {"type": ENVELOPE_TYPE, "signed": payload_id, "signatures": signatures or []}
    )
    return envelope, payload_block


# -- roots ---------------------------------------------------------------------------------


def test_make_root_defaults_and_roundtrip() -> None:
    signed = root_v1()
    root = signed.root
    assert root.version == 1 and root.previous is None
    assert root.publishers.keys == root.maintainers.keys
    assert root.builders.threshold == 1
    assert "previous" not in root.to_dag()
    store = MemoryBlockStore()
    assert put_root(store, signed) == signed.cid
    loaded = load_root(store, signed.cid)
    assert loaded == signed
    assert loaded.root_id == signed.root_id


def test_rotation_links_previous() -> None:
    v1 = root_v1()
    v2 = make_root(expires=FAR, maintainers=[B.public_key, C.public_key], previous=v1)
    assert v2.version == 2 and v2.previous == v1.root_id
    assert v2.to_dag()["previous"] == v1.root_id


def test_root_role_key_must_be_listed() -> None:
    root = root_v1().root
    value = root.to_dag()
    del value["keys"][C.key_id]
    with pytest.raises(
        SchemaError, match=f"role maintainers lists {C.key_id}, which is not in keys"
    ):
        Root.from_dag(value)


def test_root_unused_key_refused() -> None:
    value = root_v1().root.to_dag()
    value["keys"][D.key_id] = D.public_key.raw
    with pytest.raises(SchemaError, match="which no role uses"):
        Root.from_dag(value)


def test_root_key_bytes_must_match_key_id() -> None:
    value = root_v1().root.to_dag()
    value["keys"][A.key_id] = B.public_key.raw
    with pytest.raises(SchemaError, match=f"{A.key_id} maps to a different public key"):
        Root.from_dag(value)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda v: v.update(extra=1), "unknown field(s) extra"),
        (lambda v: v.pop("expires"), "lacks the field(s) expires"),
        (lambda v: v.update(type="ipfsbin/root/2"), "expected 'ipfsbin/root/1'"),
        (lambda v: v.update(version=True), "version must be an integer, got bool"),
        (lambda v: v.update(version=2), "must link version 1 in previous"),
        (lambda v: v.update(previous=INDEX), "version 1 has no previous root"),
        (lambda v: v["roles"].pop("builders"), "roles lacks the field(s) builders"),
        (lambda v: v["roles"]["builders"].update(threshold=0), "must be between 1 and"),
    ],
)
def test_root_schema_errors(change: Any, fragment: str) -> None:
    value = root_v1().root.to_dag()
    change(value)
    envelope, payload = envelope_for(value)
    with pytest.raises(SchemaError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        SignedRoot.from_blocks(envelope, payload)


def test_commit_envelope_is_not_a_root() -> None:
    commit = commit_on(root_v1())
    with pytest.raises(SchemaError, match="expected 'ipfsbin/root/1'"):
        SignedRoot.from_blocks(commit.block, commit.payload_block)


# -- envelopes -----------------------------------------------------------------------------


def test_envelope_payload_must_match_link() -> None:
    a, b = commit_on(root_v1(), n=1), commit_on(root_v1(), n=2)
    with pytest.raises(BlockMismatchError, match="payload block bytes do not hash to"):
        SignedCommit.from_blocks(a.block, b.payload_block)


def test_envelope_cid_is_checked_when_given() -> None:
    a, b = commit_on(root_v1(), n=1), commit_on(root_v1(), n=2)
    with pytest.raises(BlockMismatchError):
        SignedCommit.from_blocks(a.block, a.payload_block, cid=b.cid)


def test_envelope_signatures_must_be_sorted_and_single() -> None:
    signed = commit_on(root_v1(), A, B)
    sigs = [s.to_dag() for s in signed.signatures]
    value = signed.commit.to_dag()
    envelope, payload = envelope_for(value, list(reversed(sigs)))
    with pytest.raises(SchemaError, match="sorted by key ID with one signature per key"):
        SignedCommit.from_blocks(envelope, payload)
    envelope, payload = envelope_for(value, [sigs[0], sigs[0]])
    with pytest.raises(SchemaError, match="one signature per key"):
        SignedCommit.from_blocks(envelope, payload)


def test_envelope_wrong_type() -> None:
    signed = commit_on(root_v1())
    value = dagcbor.decode(signed.block)
    value["type"] = "ipfsbin/signed/2"
    with pytest.raises(SchemaError, match="envelope type is 'ipfsbin/signed/2'"):
        SignedCommit.from_blocks(dagcbor.encode(value), signed.payload_block)


def test_not_dag_cbor() -> None:
    with pytest.raises(CodecError):
        SignedCommit.from_blocks(b"\xff", b"")


def test_load_missing_block() -> None:
    with pytest.raises(BlockNotFoundError):
        load_commit(MemoryBlockStore(), INDEX)


# -- commits -------------------------------------------------------------------------------


def test_make_commit_heights_and_defaults() -> None:
    root = root_v1()
    first = commit_on(root)
    assert first.height == 1 and first.commit.parents == ()
    assert make_commit(index=INDEX, root=root, time=T0).expires == T0 + DEFAULT_COMMIT_LIFETIME
    second = commit_on(root, parents=(first,), n=1)
    side = commit_on(root, parents=(second,), n=2)
    merge = commit_on(root, parents=(side, first), n=3)
    assert (second.height, side.height, merge.height) == (2, 3, 4)
    assert merge.commit.parents == (side.commit_id, first.commit_id)
    assert merge.commit.root == root.root_id


def test_commit_roundtrip_through_store() -> None:
    store = MemoryBlockStore()
    commits = chain_of(root_v1(), 3, store)
    head = commits[-1]
    loaded = load_commit(store, head.cid)
    assert loaded == head
    assert load_commit_payload(store, head.commit_id) == head.commit
    history = list(iter_history(store, head.commit_id))
    assert [cid for cid, _ in history] == [c.commit_id for c in reversed(commits)]
    assert len(list(iter_history(store, head.commit_id, limit=2))) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"height": 2}, SchemaError, "without parents has height 1, got 2"),
        ({"parents": (INDEX,), "height": 1}, SchemaError, "with parents has height >= 2"),
        ({"parents": (INDEX, INDEX), "height": 2}, SchemaError, "same parent twice"),
        ({"expires": T0}, SchemaError, "must be after its time"),
        ({"time": -1}, SchemaError, "time must be an integer >= 0"),
        ({"message": "x" * 70000}, SchemaError, "longer than 65536 bytes"),
        ({"parents": [INDEX]}, TypeError, "must be a tuple"),
        ({"changes": (INDEX,)}, SchemaError, "only a commit with one parent may list changes"),
        (
            {"parents": (INDEX, dagcbor.encode_block(1)[0]), "height": 2, "changes": (INDEX,)},
            SchemaError,
            "this one has 2",
        ),
        ({"parents": (INDEX,), "height": 2, "changes": (INDEX, INDEX)}, SchemaError, "twice"),
        (
            {"parents": (INDEX,), "height": 2, "changes": (CID.v1(0x55, INDEX.multihash),)},
            SchemaError,
            "must link dag-cbor blocks",
        ),
        ({"parents": (INDEX,), "height": 2, "changes": [INDEX]}, TypeError, "must be a tuple"),
    ],
)
def test_commit_validation(kwargs: dict[str, Any], error: type[Exception], fragment: str) -> None:
    fields: dict[str, Any] = {
        "parents": (),
        "index": INDEX,
        "height": 1,
        "time": T0,
        "expires": T0 + DAY,
        "root": INDEX,
        "message": "",
    }
    fields.update(kwargs)
    with pytest.raises(error, match=fragment):
        Commit(**fields)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda v: v.update(type=COMMIT_TYPE + "x"), "expected 'ipfsbin/commit/1'"),
        (lambda v: v.update(parents=[b"x"]), "commit parent must be a link"),
        (lambda v: v.update(root=CID.v1(0x55, INDEX.multihash)), "must link a dag-cbor block"),
        (lambda v: v.update(message=None), "message must be a string, got null"),
        (lambda v: v.update(height=2**63), "height must be between 1 and"),
        (lambda v: v.pop("index"), "lacks the field"),
        (lambda v: v.update(changes=[]), "must list at least one part"),
        (lambda v: v.update(changes=INDEX), "commit changes must be a list"),
        (lambda v: v.update(changes=["x"]), "commit changes part must be a link"),
        (lambda v: v.update(changes=[INDEX]), "only a commit with one parent"),
        (lambda v: v.update(change=[INDEX]), r"unknown field\(s\) change"),
    ],
)
def test_commit_schema_errors(change: Any, fragment: str) -> None:
    value = commit_on(root_v1()).commit.to_dag()
    change(value)
    envelope, payload = envelope_for(value)
    with pytest.raises(SchemaError, match=fragment):
        SignedCommit.from_blocks(envelope, payload)


def test_commit_changes_roundtrip_and_absent_when_empty() -> None:
    root = root_v1()
    first = commit_on(root)
    plain = make_commit(index=INDEX, root=root, time=T0, parents=[first])
    assert "changes" not in plain.to_dag()
    part = dagcbor.encode_block({"part": 1})[0]
    with_changes = make_commit(index=INDEX, root=root, time=T0, parents=[first], changes=[part])
    assert with_changes.to_dag()["changes"] == [part]
    signed = sign_commit(with_changes, A)
    again = SignedCommit.from_blocks(signed.block, signed.payload_block)
    assert again.commit.changes == (part,)
    assert again.commit_id != sign_commit(plain, A).commit_id


def test_put_commit_stores_both_blocks() -> None:
    store = MemoryBlockStore()
    signed = commit_on(root_v1())
    assert put_commit(store, signed) == signed.cid
    assert store.has(signed.cid) and store.has(signed.commit_id)
