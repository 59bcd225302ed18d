"""``ipfsbin challenge`` over an in-memory followed index: local builds and installed binaries."""

from __future__ import annotations

import hashlib

from catalog_helpers import Index

from ipfsbin.builder.local import LocalBuild
from ipfsbin.catalog.challenge import challenge_builds, installed_builds
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key
from ipfsbin.store.memory import MemoryBlockStore
from tests.unit.maintainer.maintainer_helpers import (
    BUILDER_X,
    BUILDER_Y,
    PLATFORM,
    descriptor,
    publish,
)

FOO = "dev-libs/foo-1"


def _index() -> Index:
    index = Index()
    index.add("foo", FOO, builders=(BUILDER_X, BUILDER_Y))
    index.add("bar", "dev-libs/bar-1", builders=(BUILDER_X,))
    return index


def _build(cpv: str, key: str, sha256: bytes) -> LocalBuild:
    return LocalBuild(path=None, cpv=cpv, key=key, sha256=sha256, origin="built")


def test_a_local_build_against_the_builders() -> None:
    index = _index()
    head = index.head()
    key = next(k for k in index.entries if "/foo/" in k)
    same = LocalBuild(
        path=None, cpv=FOO, key=key, sha256=hashlib.sha256(b"foo bytes").digest(), origin="built"
    )
    other = LocalBuild(path=None, cpv=FOO, key=key, sha256=bytes(32), origin="built")
    stranger = LocalBuild(
        path=None,
        cpv="dev-libs/baz-1",
        key=key.replace("/foo/", "/baz/"),
        sha256=bytes(32),
        origin="built",
    )
    for build, verdict in ((same, "identical"), (other, "differing"), (stranger, "inconclusive")):
        report = challenge_builds([build], [head], held=index.store, store=index.store)
        (item,) = report.items
        assert item.verdict == verdict
    (item,) = challenge_builds([same], [head], held=index.store, store=index.store).items
    assert [b for b, _ in item.builders] == sorted([BUILDER_X.key_id, BUILDER_Y.key_id])
    assert "in k51test" in item.note


def test_installed_binaries_are_found_by_the_md5_portage_recorded() -> None:
    index = _index()
    head = index.head()
    md5 = hashlib.md5(b"foo bytes").hexdigest()  # noqa: S324 - what Portage records
    installed = {FOO: md5, "dev-libs/bar-1": "0" * 32}
    found, unknown = installed_builds(installed, [head], held=index.store, store=index.store)
    (build,) = found
    assert build.cpv == FOO and build.sha256 == hashlib.sha256(b"foo bytes").digest()
    assert build.origin == "installed binary"
    (missing,) = unknown
    assert missing.cpv == "dev-libs/bar-1" and missing.verdict == "inconclusive"
    report = challenge_builds(found, [head], held=index.store, store=index.store, extra=unknown)
    assert [i.verdict for i in report.items] == ["inconclusive", "identical"]


def test_an_installed_binary_is_found_through_a_disagreeing_builders_manifest() -> None:
    # an entry that keeps both builds lists Y's manifest; the host installed X's bytes
    store = MemoryBlockStore()
    desc = descriptor(FOO)
    x = publish(store, FOO, b"bytes of x", BUILDER_X, desc=desc)
    y = publish(store, FOO, b"bytes of y", BUILDER_Y, desc=desc)
    assert x.attestation is not None and y.attestation is not None
    key = index_key(PLATFORM.cid, FOO, desc.cid)
    entry = IndexEntry.new(y.manifest_cid, [x.attestation.cid, y.attestation.cid])
    index = Index()
    index.store, index.entries = store, {key: entry}
    head = index.head()
    md5 = hashlib.md5(b"bytes of x").hexdigest()  # noqa: S324 - what Portage records
    (build,), unknown = installed_builds({FOO: md5}, [head], held=store, store=store)
    assert unknown == [] and build.sha256 == hashlib.sha256(b"bytes of x").digest()
    (item,) = challenge_builds([build], [head], held=store, store=store).items
    assert item.verdict == "differing"
