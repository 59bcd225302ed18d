"""The ``indexed`` filter: a build a followed index already has, with the same bytes, is found."""

from __future__ import annotations

import hashlib

from ipfsbin.builder.indexed import BuildIdentity, FollowedIndexes
from ipfsbin.catalog.heads import FollowedHead
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.manifest import BuildHost, Manifest
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.signing import Role

PLATFORM, DESCRIPTOR = (cid_for(DAG_CBOR, dagcbor.encode(w)) for w in ("platform", "descriptor"))
BYTES = b"the binpkg's bytes"
CPV = "dev-libs/libfoo-1"


def _manifest(store: MemoryBlockStore, data: bytes, chost: str) -> CID:
    manifest = Manifest.create(
        descriptor=DESCRIPTOR,
        binpkg=cid_for(RAW, data),
        format="gpkg",
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        sha1=hashlib.sha1(data).digest(),  # noqa: S324
        md5=hashlib.md5(data).digest(),  # noqa: S324
        portage={"CPV": CPV, "EAPI": "8", "SLOT": "0"},
        build=BuildHost(chost=chost),
    )
    cid, block = manifest.to_block()
    assert store.put(block) == cid
    return cid


def _head(store: MemoryBlockStore, manifest: CID) -> FollowedHead:
    key = index_key(PLATFORM, CPV, DESCRIPTOR)
    root = ProllyTree(store).build([(key, IndexEntry(manifest=manifest).to_dag())])
    return FollowedHead(
        name="k51index", head=root, height=1, index_root=root, commit_time=0,
        freshness=None, root_version=1,
        builders=Role(name="builders", keys=(SigningKey.generate().key_id,), threshold=1),
        accepted_at=None, checked_at=None, error=None,
    )  # fmt: skip


def _build(manifest: CID, data: bytes = BYTES) -> BuildIdentity:
    return BuildIdentity(
        platform=PLATFORM,
        descriptor=DESCRIPTOR,
        cpv=CPV,
        manifest=manifest,
        sha256=hashlib.sha256(data).digest(),
    )


def test_same_manifest_and_same_bytes_of_another_builder_are_found() -> None:
    store = MemoryBlockStore()
    ours = _manifest(store, BYTES, "x86_64-pc-linux-gnu")
    theirs = _manifest(store, BYTES, "x86_64-unknown-linux-gnu")
    other_bytes = _manifest(store, b"another build", "x86_64-unknown-linux-gnu")
    key = index_key(PLATFORM, CPV, DESCRIPTOR)

    same = FollowedIndexes(lambda: [_head(store, ours)], local=store, fetch=store)
    assert same.find(_build(ours)) == (
        f"the followed index k51index already has these bytes (entry {key})"
    )
    by_bytes = FollowedIndexes(lambda: [_head(store, theirs)], local=store, fetch=store)
    assert by_bytes.find(_build(ours)) is not None
    differ = FollowedIndexes(lambda: [_head(store, other_bytes)], local=store, fetch=store)
    assert differ.find(_build(ours)) is None
    assert FollowedIndexes(lambda: [], local=store, fetch=store).find(_build(ours)) is None


def test_a_manifest_that_cannot_be_read_does_not_stop_sharing() -> None:
    store, empty = MemoryBlockStore(), MemoryBlockStore()
    theirs = _manifest(store, BYTES, "x86_64-unknown-linux-gnu")
    lookup = FollowedIndexes(lambda: [_head(store, theirs)], local=store, fetch=empty)
    assert lookup.find(_build(cid_for(RAW, b"ours"))) is None
