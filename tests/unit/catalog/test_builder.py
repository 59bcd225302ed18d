"""A catalog rebuilt from what changed equals one built from nothing, byte for byte."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder, FollowedHead, build_catalog
from ipfsbin.catalog.tracked import TrackedIndex
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import DAG_CBOR
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.compat import UseConfig
from ipfsbin.descriptor.model import SlotDep
from ipfsbin.errors import IpfsbinError
from ipfsbin.host.profile import HostInfo
from ipfsbin.index._node import encode_node
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.serve.packages import PackagesFile, TimestampBook, render_body
from ipfsbin.serve.publisher import render_files
from tests.unit.catalog.catalog_helpers import MUSL, NOW, V3, V4, Index, host_info
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, BUILDER_Y, T0

NAME = "k51test"
PADDING = 40
CPVS = 5 + PADDING
LIBFOO_2 = SlotDep(name="dev-libs/libfoo", slot="0", subslot="2", runtime=True)


def _index() -> Index:
    index = Index()
    index.add("foo", "app-misc/foo-1", build_time=T0)
    index.add("foo-v3", "app-misc/foo-1", V3, build_time=T0 - 100)
    index.add("foo-two", "app-misc/foo-1", builders=(BUILDER_X, BUILDER_Y), repository="r2")
    index.add("foo-v4", "app-misc/foo-1", V4)  # never fits this x86_64_v3 host
    index.add("bar", "app-misc/bar-2")
    index.add("bar-musl", "app-misc/bar-2", MUSL)
    index.add("baz-nossl", "dev-util/baz-1", use=(), iuse=("ssl",))
    index.add("baz", "dev-util/baz-1")
    index.add("qux-libfoo2", "net-misc/qux-3", deps=(LIBFOO_2,))
    index.add("qux", "net-misc/qux-3", repository="r2")
    index.add("old", "sys-apps/old-1")
    for i in range(PADDING):  # enough listed CPVs that a few changes are put in place
        index.add(f"pad{i}", f"dev-python/pad{i}-1")
    return index


def _full(head: FollowedHead, host: HostInfo, store: Any, **kw: Any) -> tuple[Any, bytes]:
    catalog = build_catalog(
        [head], host=host, policy=ClientPolicy(), cache=BuildCache(store), now=NOW, **kw
    )
    return catalog, render_body(catalog.offers.get(NAME, ()))


def _same(builder: CatalogBuilder, head: FollowedHead, host: HostInfo, **kw: Any) -> Any:
    """Rebuild with ``builder``; assert it equals a full build, byte for byte."""
    catalog = builder.build([head], host=host, policy=ClientPolicy(), now=NOW, **kw)
    full, body = _full(head, host, builder.cache.store, **kw)
    assert builder.bodies[NAME] == body
    assert catalog.offers == full.offers
    assert catalog.heads == full.heads
    return catalog


def test_rebuild_after_a_diff_equals_a_full_build() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    host = host_info()
    first = _same(builder, index.head(), host)
    assert builder.rejudged == CPVS
    assert [o.cpv for o in first.offers[NAME]][:2] == ["app-misc/bar-2", "app-misc/foo-1"]

    # one sync: a new CPV, a new build of a listed CPV, a yank, a removal
    index.add("new", "app-misc/new-1")
    index.add("bar-new", "app-misc/bar-2", repository="r3", build_time=T0 + 50)
    key = next(k for k, e in index.entries.items() if e.manifest == index.manifests["baz"])
    index.entries[key] = index.entries[key].yanked("broken")
    key = next(k for k, e in index.entries.items() if e.manifest == index.manifests["old"])
    del index.entries[key]
    second = _same(builder, index.head(), host)
    assert builder.rejudged == 4  # new, bar, baz, old: foo and qux were not looked at
    cpvs = {o.cpv for o in second.offers[NAME]}
    assert "app-misc/new-1" in cpvs and "sys-apps/old-1" not in cpvs
    assert index.manifests["baz"] not in {o.build.manifest_cid for o in second.offers[NAME]}

    # nothing moved: nothing judged, the same stanzas object
    body = builder.bodies[NAME]
    _same(builder, index.head(), host)
    assert builder.rejudged == 0 and builder.bodies[NAME] is body


def test_host_change_rejudges_only_the_packages_it_touches() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    head = index.head()
    _same(builder, head, host_info())
    # the installed libfoo moves to sub-slot 2: qux's build against it now fits
    moved = host_info(installed={"dev-libs/libfoo": {"0": "2"}})
    catalog = _same(builder, head, moved)
    assert builder.rejudged == 1
    assert index.manifests["qux-libfoo2"] in {o.build.manifest_cid for o in catalog.offers[NAME]}

    # this host now wants baz without ssl
    def use(cps: Any) -> dict[str, UseConfig]:
        ssl = frozenset({"ssl"})
        return {
            cp: UseConfig(use=frozenset() if cp == "dev-util/baz" else ssl, iuse=ssl) for cp in cps
        }

    catalog = _same(builder, head, host_info(installed=moved.installed, use_reader=use))
    assert builder.rejudged == 1
    baz = [o.build.manifest_cid for o in catalog.offers[NAME] if o.cpv == "dev-util/baz-1"]
    assert baz == [index.manifests["baz-nossl"]]

    # another CPU: every CPV again, and the v4 build now fits
    v4_host = host_info(installed=moved.installed, use_reader=use, cpu_features=V4.cflags.features)
    catalog = _same(builder, head, v4_host)
    assert builder.rejudged == CPVS
    assert index.manifests["foo-v4"] in {o.build.manifest_cid for o in catalog.offers[NAME]}


def test_undeliverable_build_is_withdrawn_and_comes_back() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    head, host = index.head(), host_info()
    _same(builder, head, host)
    bad = {index.manifests["bar"]: "sha256 mismatch"}
    catalog = _same(builder, head, host, undeliverable=bad)
    assert builder.rejudged == 1
    assert index.manifests["bar"] not in {o.build.manifest_cid for o in catalog.offers[NAME]}
    _same(builder, head, host)
    assert builder.rejudged == 1


def test_a_rebuild_reads_no_node_of_the_old_root() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    host = host_info()
    old = index.head()
    _same(builder, old, host)
    index.store._blocks.pop(old.index_root)  # the node store dropped the old head's root
    index.add("new", "app-misc/new-1")
    _same(builder, index.head(), host)
    assert builder.rejudged == 1


def test_unreadable_new_root_keeps_what_was_read() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    host = host_info()
    _same(builder, index.head(), host)
    index.add("new", "app-misc/new-1")
    head = index.head()
    block = index.store._blocks.pop(head.index_root)
    with pytest.raises(IpfsbinError):
        builder.build([head], host=host, policy=ClientPolicy(), now=NOW)
    index.store._blocks[head.index_root] = block
    _same(builder, head, host)
    assert builder.rejudged == 1


def test_new_nodes_read_without_the_canonical_proof_give_what_a_strict_read_gives() -> None:
    index = _index()
    tracked = TrackedIndex()
    tracked.move_to(ProllyTree(index.store, checked=True), index.head().index_root)
    index.add("new", "app-misc/new-1")
    key = next(k for k, e in index.entries.items() if e.manifest == index.manifests["baz"])
    index.entries[key] = index.entries[key].yanked("broken")
    del index.entries[next(iter(sorted(index.entries)))]
    root = index.head().index_root
    changed = tracked.move_to(ProllyTree(index.store, checked=True), root)
    strict = {k: IndexEntry.from_dag(v) for k, v in ProllyTree(index.store).items(root)}
    assert {k: entry for k, (_, entry) in tracked.by_key.items()} == strict
    assert {"app-misc/new-1", "dev-util/baz-1"} <= changed


@pytest.mark.parametrize(
    "value",
    [
        bytes.fromhex("d82b00"),  # a CBOR tag other than 42
        bytes.fromhex("a10102"),  # a map with an integer key
        dagcbor.encode({"manifest": "x", "attestations": [], "state": "ok"}),
    ],
    ids=["foreign tag", "integer key", "not a link"],
)
def test_a_new_node_holding_no_index_entry_is_refused_and_the_state_kept(value: bytes) -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    host = host_info()
    _same(builder, index.head(), host)
    leaf = encode_node(0, [b"\x82" + dagcbor.encode(next(iter(sorted(index.entries)))) + value])
    head = dataclasses.replace(index.head(), index_root=index.store.put(leaf, DAG_CBOR))
    with pytest.raises(IpfsbinError):
        builder.build([head], host=host, policy=ClientPolicy(), now=NOW)
    _same(builder, index.head(), host)
    assert builder.rejudged == 0


def test_stale_head_is_judged_afresh_when_fresh_again() -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    _same(builder, index.head(), host_info())
    stale = builder.build(
        [index.head(now=T0 + 30 * 86400)], host=host_info(), policy=ClientPolicy(), now=NOW
    )
    assert stale.heads[0].stale is not None and NAME not in builder.bodies
    # while it was stale this host installed libfoo:2
    moved = host_info(installed={"dev-libs/libfoo": {"0": "2"}})
    _same(builder, index.head(), moved)


def test_platform_fit_ignores_a_builds_own_cpu_flags() -> None:
    """A build with USE=cpu_flags_x86_avx512f first in key order left its whole platform out."""
    index = Index()
    index.add("avx512", "app-misc/aaa-1", use=("cpu_flags_x86_avx512f", "ssl"),
              iuse=("cpu_flags_x86_avx512f", "ssl"))  # fmt: skip
    index.add("plain", "app-misc/zzz-1")
    catalog, _ = _full(index.head(), host_info(), index.store)
    assert [o.build.manifest_cid for o in catalog.offers[NAME]] == [index.manifests["plain"]]


def test_served_files_after_a_rebuild_equal_a_full_render(tmp_path: Path) -> None:
    index = _index()
    builder = CatalogBuilder(BuildCache(index.store), render=render_body)
    host = host_info()
    files: dict[str, PackagesFile] = {}
    for step in range(3):
        if step:
            index.add(f"step{step}", f"app-misc/step{step}-1")
        head = index.head()
        catalog = builder.build([head], host=host, policy=ClientPolicy(), now=NOW + step * 10)
        book = TimestampBook(tmp_path / "t.json")
        files = render_files(
            catalog, [NAME], book, now=NOW + step * 10, builder=builder, previous=files
        )
        full, _ = _full(head, host, index.store)
        plain = render_files(full, [NAME], TimestampBook(tmp_path / "u.json"), now=NOW)[NAME]
        file = files[NAME]
        assert file.body == plain.body
        assert gzip.decompress(file.gz) == file.text
        assert file.offers == plain.offers
