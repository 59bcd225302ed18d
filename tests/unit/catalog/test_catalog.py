"""The catalog over an in-memory index: what is offered, in which order, and why not."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.catalog import (
    AXES,
    BuildCache,
    build_catalog,
    check_policy,
    explain,
    head_refusal,
    parse_atom,
)
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.compat import UseConfig
from ipfsbin.descriptor.model import SlotDep
from ipfsbin.host.profile import HostInfo
from tests.unit.catalog.catalog_helpers import MUSL, NOW, V3, V4, Index, host_info
from tests.unit.maintainer.maintainer_helpers import (
    BUILDER_X,
    BUILDER_Y,
    PLATFORM,
    STRANGER,
    T0,
)


def _catalog(index: Index, host: HostInfo | None = None, **kw: Any) -> Any:
    policy = kw.pop("policy", ClientPolicy())
    now = kw.pop("now", NOW)
    head = index.head(now=now, allow_stale=kw.pop("allow_stale", False), **kw.pop("head", {}))
    return build_catalog(
        [head],
        host=host or host_info(),
        policy=policy,
        cache=BuildCache(index.store),
        now=now,
        **kw,
    )


def test_ranking_closest_target_then_builders_then_newest() -> None:
    index = Index()
    index.add("base-old", "app-misc/foo-1", build_time=T0)
    index.add("base-new-two", "app-misc/foo-1", builders=(BUILDER_X, BUILDER_Y), build_time=T0 - 5,
              use=("ssl",), iuse=("ssl",), subslot="0", repository="other")  # fmt: skip
    index.add("v3", "app-misc/foo-1", V3, build_time=T0 - 100)
    index.add("v4", "app-misc/foo-1", V4, build_time=T0 + 100)  # does not run on x86_64_v3
    offers = _catalog(index).offers["k51test"]
    order = [o.build.manifest_cid for o in offers]
    assert order == [index.manifests[n] for n in ("v3", "base-new-two", "base-old")]
    # Portage takes the newest BUILD_TIME: listed times fall with the rank
    times = [o.build_time for o in offers]
    assert times == sorted(times, reverse=True) and len(set(times)) == 3
    assert offers[0].build_time == T0 - 100  # the first choice keeps its own
    ids = [o.build_id for o in offers]
    assert len(set(ids)) == 3
    for offer in offers:
        assert offer.path == f"app-misc/foo/foo-1-{offer.build_id}.gpkg.tar"


def test_build_id_is_stable_when_the_index_moves() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    first = {o.build.manifest_cid: o.build_id for o in _catalog(index).offers["k51test"]}
    index.add("b", "app-misc/foo-1", V3)
    second = {o.build.manifest_cid: o.build_id for o in _catalog(index).offers["k51test"]}
    assert first.items() <= second.items()


def test_refusals_per_axis_in_explain() -> None:
    index = Index()
    index.add("ok", "app-misc/foo-1")
    index.add("use", "app-misc/foo-1", use=(), iuse=("ssl",), repository="r2")
    dep = SlotDep(name="dev-libs/libfoo", slot="0", subslot="2", runtime=True)
    index.add("subslot", "app-misc/foo-1", repository="r3", deps=(dep,))
    index.add("march", "app-misc/foo-1", V4)
    index.add("musl", "app-misc/foo-1", MUSL)
    index.add("yanked", "app-misc/foo-1", repository="r4", state="yanked")
    index.add("lonely", "app-misc/foo-1", repository="r5", builders=())
    found = explain(
        "app-misc/foo",
        [index.head()],
        host=host_info(),
        policy=ClientPolicy(),
        cache=BuildCache(index.store),
        now=NOW,
    )
    by_manifest = {c.build.manifest_cid: c for c in found if c.build is not None}
    axes = {
        name: sorted({r.axis for r in by_manifest[cid].refusals})
        for name, cid in index.manifests.items()
    }
    assert axes == {
        "ok": [],
        "use": ["use"],
        "subslot": ["sub-slot"],
        "march": ["microarchitecture"],
        "musl": ["chost", "libc"],
        "yanked": ["yanked"],
        "lonely": ["policy"],
    }
    assert by_manifest[index.manifests["ok"]].rank == 1
    subslot = by_manifest[index.manifests["subslot"]].refusals[0].reason
    assert "dev-libs/libfoo:0/2" in subslot and "0/1" in subslot


def test_accept_chosts_accepts_another_chost() -> None:
    index = Index()
    other = dataclasses.replace(PLATFORM, chost="x86_64-gentoo-linux-gnu")
    index.add("other", "app-misc/foo-1", other)
    assert _catalog(index).size == 0
    assert _catalog(index, host_info(accept_chosts=("x86_64-gentoo-linux-gnu",))).size == 1


def test_policy_min_and_allowed_builders() -> None:
    index = Index()
    index.add("x", "app-misc/foo-1", builders=(BUILDER_X,))
    index.add("xy", "app-misc/bar-1", builders=(BUILDER_X, BUILDER_Y))
    index.add("stranger", "app-misc/baz-1", builders=(STRANGER,))  # not in the root
    two = _catalog(index, policy=ClientPolicy(min_builders=2))
    assert [o.cpv for o in two.offers["k51test"]] == ["app-misc/bar-1"]
    only_y = _catalog(index, policy=ClientPolicy(allowed_builders=frozenset({BUILDER_Y.key_id})))
    assert [o.cpv for o in only_y.offers["k51test"]] == ["app-misc/bar-1"]
    default = _catalog(index)
    assert sorted(o.cpv for o in default.offers["k51test"]) == ["app-misc/bar-1", "app-misc/foo-1"]
    assert check_policy([], min_builders=0, allowed=()) == []


def test_stale_head_offers_nothing_unless_allowed() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    late = T0 + 8 * 86400
    catalog = _catalog(index, now=late)
    stale = catalog.heads[0].stale or ""
    assert catalog.size == 0 and "head commit expired at" in stale and "frozen" in stale
    assert _catalog(index, now=late, allow_stale=True).size == 1
    aged = _catalog(index, policy=ClientPolicy(max_head_age=600))
    assert aged.size == 0 and "max_head_age" in (aged.heads[0].stale or "")


def test_head_refusal_follows_the_followers_freshness() -> None:
    head = Index().head(root_expires=NOW - 1)
    assert "trust root expired at" in (head_refusal(head, now=NOW, max_age=None) or "")
    allowed = Index().head(root_expires=NOW - 1, allow_stale=True)
    assert head_refusal(allowed, now=NOW, max_age=None) is None
    unknown = dataclasses.replace(Index().head(), freshness=None)
    assert "not recorded yet" in (head_refusal(unknown, now=NOW, max_age=None) or "")


def test_undeliverable_build_is_withdrawn() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    bad = {index.manifests["a"]: "sha256 differs"}
    assert _catalog(index, undeliverable=bad).size == 0


def test_build_cache_loads_each_entry_once() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    cache = BuildCache(index.store)
    for _ in range(2):
        build_catalog([index.head()], host=host_info(), policy=ClientPolicy(), cache=cache, now=NOW)
    assert cache.loaded == 1


@pytest.mark.parametrize(
    ("atom", "parsed"),
    [
        ("app-misc/foo", ("app-misc", "foo", None)),
        ("=app-misc/foo-1.2-r1", ("app-misc", "foo", "1.2-r1")),
        ("dev-libs/libfoo-bar", ("dev-libs", "libfoo-bar", None)),
    ],
)
def test_parse_atom(atom: str, parsed: tuple[str, str, str | None]) -> None:
    assert parse_atom(atom) == parsed


def test_parse_atom_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="is not an atom"):
        parse_atom("foo bar")


def test_documented_axes() -> None:
    doc = (Path(__file__).parents[3] / "schema/catalog.md").read_text()
    documented = [line.split("`")[1] for line in doc.splitlines() if line.startswith("| `")]
    assert tuple(documented) == AXES


def test_a_rebuild_after_a_sync_loads_only_the_new_build_and_rechecks_changed_use() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    index.add("b", "app-misc/bar-1")
    cache = BuildCache(index.store)
    host = host_info()

    def build(h: HostInfo) -> list[str]:
        catalog = build_catalog([index.head()], host=h, policy=ClientPolicy(), cache=cache, now=NOW)
        return sorted(o.cpv for o in catalog.offers["k51test"])

    assert build(host) == ["app-misc/bar-1", "app-misc/foo-1"] and cache.loaded == 2
    index.add("c", "dev-libs/baz-2")
    assert build(host) == ["app-misc/bar-1", "app-misc/foo-1", "dev-libs/baz-2"]
    assert cache.loaded == 3
    # this host now wants other USE for foo only: foo's verdict is taken again, the rest kept
    other = dataclasses.replace(
        host,
        use_reader=lambda cps: {
            cp: UseConfig(use=frozenset() if cp == "app-misc/foo" else frozenset({"ssl"}),
                          iuse=frozenset({"ssl"}))
            for cp in cps
        },
    )  # fmt: skip
    assert build(other) == ["app-misc/bar-1", "dev-libs/baz-2"]
    assert build(host) == ["app-misc/bar-1", "app-misc/foo-1", "dev-libs/baz-2"]
