"""Changesets: splitting a batch into parts, strict decoding, and rebuilding the same tree."""

from __future__ import annotations

from typing import Any

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.errors import CodecError, SchemaError
from ipfsbin.index import IndexEntry, ProllyTree, changeset
from ipfsbin.index.changeset import (
    MAX_PART_BYTES,
    Changeset,
    ChangesetPart,
    decode_part,
    encode_part,
    put_changeset,
    split_changes,
)
from ipfsbin.store.memory import MemoryBlockStore

BASE = dagcbor.encode_block({})[0]


def entry(i: int, v: int = 0) -> dagcbor.Value:
    return IndexEntry.new(dagcbor.encode_block({"m": i, "v": v})[0]).to_dag()


def key(i: int) -> str:
    return f"amd64-k8/dev-libs/pkg{i:05d}/1.0/d{i:08x}"


def test_exported_names() -> None:
    assert sorted(changeset.__all__) == sorted(
        [
            "CHANGESET_TYPE",
            "MAX_PARTS",
            "MAX_PART_BYTES",
            "PART_BUDGET",
            "Changeset",
            "ChangesetPart",
            "decode_part",
            "encode_part",
            "put_changeset",
            "split_changes",
        ]
    )


def test_split_keeps_key_order_and_joins_back() -> None:
    upserts = {key(i): entry(i) for i in range(0, 300, 3)}
    deletes = [key(i) for i in range(1, 300, 6)]
    parts = split_changes(BASE, upserts, reversed(deletes), budget=2000)
    assert len(parts) > 3 and all(p.base == BASE for p in parts)
    for part in parts:
        size = sum(len(dagcbor.encode([k, v])) for k, v in part.upserts)
        size += sum(len(dagcbor.encode(k)) for k in part.deletes)
        assert size <= 2000
    joined = Changeset.from_parts(parts)
    assert joined.upsert_map() == upserts and list(joined.deletes) == sorted(deletes)
    assert joined.size == len(upserts) + len(deletes)
    assert split_changes(BASE, {}) == ()


def test_split_refuses_a_key_both_upserted_and_deleted() -> None:
    with pytest.raises(ValueError, match="both upserted and deleted"):
        split_changes(BASE, {key(1): entry(1)}, [key(1)])


def test_part_roundtrip_through_a_store() -> None:
    store = MemoryBlockStore()
    parts = split_changes(BASE, {key(i): entry(i) for i in range(50)}, budget=1500)
    cids = put_changeset(store, parts)
    again = [decode_part(cid, store.get(cid)) for cid in cids]
    assert tuple(again) == parts
    assert encode_part(parts[0])[0] == cids[0]


def test_applying_the_changeset_gives_the_maintainers_tree_byte_for_byte() -> None:
    maintainer = ProllyTree(MemoryBlockStore())
    old = maintainer.build(sorted((key(i), entry(i)) for i in range(3000)))
    upserts = {key(i): entry(i, 1) for i in range(0, 3000, 97)} | {key(5000): entry(5000)}
    deletes = [key(i) for i in range(5, 3000, 301)]
    new = maintainer.mutate(old, upserts, deletes)
    parts = split_changes(old, upserts, deletes, budget=4096)

    follower_store = MemoryBlockStore()
    follower = ProllyTree(follower_store)
    assert follower.build(sorted((key(i), entry(i)) for i in range(3000))) == old
    joined = Changeset.from_parts([decode_part(*encode_part(p)) for p in parts])
    rebuilt = follower.mutate(joined.base, joined.upsert_map(), joined.deletes)
    assert rebuilt == new
    assert all(follower_store.get(c) == maintainer.store.get(c) for c in follower_store)


def good() -> dict[str, Any]:
    return ChangesetPart(base=BASE, upserts=((key(1), entry(1)),), deletes=(key(2),)).to_dag()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda v: v.update(extra=1), r"unknown field\(s\) extra"),
        (lambda v: v.pop("deletes"), r"lacks the field\(s\) deletes"),
        (lambda v: v.update(type="ipfsbin/changeset/2"), "expected 'ipfsbin/changeset/1'"),
        (lambda v: v.update(base="bafy"), "base must be a link"),
        (lambda v: v.update(base=cid_for(RAW, b"x")), "must link a dag-cbor index node"),
        (lambda v: v.update(upserts={}), "upserts and deletes must be lists"),
        (lambda v: v.update(upserts=[[key(1)]]), r"a changeset upsert is a \[key, value\] pair"),
        (lambda v: v.update(upserts=[[1, 2]]), r"a changeset upsert is a \[key, value\] pair"),
        (lambda v: v.update(deletes=[3]), "a changeset delete is a key string"),
        (
            lambda v: v.update(upserts=[[key(2), 1], [key(1), 1]]),
            "upserts must be sorted by key without repeats",
        ),
        (lambda v: v.update(deletes=[key(2), key(2)]), "deletes must be sorted"),
        (lambda v: v.update(deletes=[key(1)]), "both upserts and deletes"),
        (lambda v: v.update(upserts=[], deletes=[]), "holds no change"),
    ],
)
def test_part_schema_errors(change: Any, fragment: str) -> None:
    value = good()
    change(value)
    cid, data = dagcbor.encode_block(value)
    with pytest.raises(SchemaError, match=fragment):
        decode_part(cid, data)


def test_part_bytes_must_match_the_cid() -> None:
    cid, data = encode_part(ChangesetPart.from_dag(good()))
    with pytest.raises(CodecError):
        decode_part(cid, data[:-1] + b"\x00")


def test_oversized_part_is_refused_before_decoding() -> None:
    cid = dagcbor.encode_block(0)[0]
    with pytest.raises(SchemaError, match=f"at most {MAX_PART_BYTES} are allowed"):
        decode_part(cid, bytes(MAX_PART_BYTES + 1))


def test_parts_must_share_a_base_and_stay_sorted_across() -> None:
    one = ChangesetPart(base=BASE, upserts=((key(5), 1),), deletes=())
    two = ChangesetPart(base=BASE, upserts=((key(3), 1),), deletes=())
    with pytest.raises(SchemaError, match="upserts across parts must be sorted"):
        Changeset.from_parts([one, two])
    other = ChangesetPart(base=dagcbor.encode_block(1)[0], upserts=((key(9), 1),), deletes=())
    with pytest.raises(SchemaError, match="part 2 applies to index"):
        Changeset.from_parts([one, other])
    deleting = ChangesetPart(base=BASE, upserts=(), deletes=(key(5),))
    with pytest.raises(SchemaError, match="both upserts and deletes"):
        Changeset.from_parts([one, deleting])
    with pytest.raises(SchemaError, match="at least one part"):
        Changeset.from_parts([])
