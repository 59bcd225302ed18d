"""The catalog's output for a fixed index and host, recorded: faster judging must not change it.

The digests were taken from the code before the per-platform verdicts and
the lighter objects of the build path; any change of a verdict, a reason,
a rank, a BUILD_ID or a byte of a stanza changes one of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder, judge_packages
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor.model import SlotDep
from ipfsbin.descriptor.verdict import SAME_ISA
from ipfsbin.serve.packages import render_body
from tests.unit.catalog.catalog_helpers import MUSL, NOW, V3, V4, Index, host_info
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, BUILDER_Y, PLATFORM, T0

LIBFOO_1 = SlotDep(name="dev-libs/libfoo", slot="0", subslot="1", runtime=True)
LIBFOO_2 = SlotDep(name="dev-libs/libfoo", slot="0", subslot="2", runtime=True)
LIBBAR = SlotDep(name="dev-libs/libbar", slot="1", subslot="1", runtime=True)
BUILD_ONLY = SlotDep(name="dev-libs/libbar", slot="2", subslot="0", runtime=False)
O3 = dataclasses.replace(PLATFORM, cflags=dataclasses.replace(PLATFORM.cflags, opt="3"))


def _index() -> Index:
    index = Index()
    index.add("foo", "app-misc/foo-1", build_time=T0)
    index.add("foo-v3", "app-misc/foo-1", V3, build_time=T0 - 100)
    index.add("foo-two", "app-misc/foo-1", builders=(BUILDER_X, BUILDER_Y), repository="r2")
    index.add("foo-v4", "app-misc/foo-1", V4)
    index.add("foo-o3", "app-misc/foo-1", O3, repository="r3")
    index.add("bar", "app-misc/bar-2")
    index.add("bar-musl", "app-misc/bar-2", MUSL)
    index.add("bar-none", "app-misc/bar-2", builders=(), repository="r4")
    index.add("baz-nossl", "dev-util/baz-1", use=(), iuse=("ssl",))
    index.add("baz-iuse", "dev-util/baz-1", use=("ssl",), iuse=("gtk", "ssl"))
    index.add("baz", "dev-util/baz-1", build_time=T0 + 7)
    index.add("qux-libfoo2", "net-misc/qux-3", deps=(LIBFOO_2,))
    index.add("qux-libfoo1", "net-misc/qux-3", deps=(BUILD_ONLY, LIBFOO_1), repository="r5")
    index.add("qux-libbar", "net-misc/qux-3", deps=(LIBBAR,), repository="r6")
    index.add("qux", "net-misc/qux-3", repository="r2")
    index.add("avx", "media-libs/avx-1", use=("cpu_flags_x86_avx2", "ssl"),
              iuse=("cpu_flags_x86_avx2", "ssl"))  # fmt: skip
    index.add("avx512", "media-libs/avx-1", use=("cpu_flags_x86_avx512f", "ssl"),
              iuse=("cpu_flags_x86_avx512f", "ssl"), repository="r2")  # fmt: skip
    index.add("needs", "media-libs/needs-1", requires=(("x86_64", ("libmissing.so.1",)),))
    index.add("yanked", "sys-apps/gone-1", state="yanked")
    index.add("old", "sys-apps/old-1")
    for i in range(12):
        index.add(f"pad{i}", f"dev-python/pad{i}-1", build_time=T0 + i)
    return index


def _digests(policy: ClientPolicy, parallel_from: int) -> tuple[str, str]:
    index = _index()
    head, host = index.head(), host_info()
    cache = BuildCache(index.store, parallel_from=parallel_from)
    builder = CatalogBuilder(cache, render=render_body)
    catalog = builder.build([head], host=host, policy=policy, now=NOW)
    body = render_body(catalog.offers["k51test"])
    assert builder.bodies["k51test"] == body
    cps = {k.split("/", 1)[1].rsplit("/", 2)[0] for k in index.entries}
    judged = judge_packages(
        cps, [head], host=host, policy=policy, cache=BuildCache(index.store), now=NOW
    )
    verdicts = json.dumps([c.to_json() for c in judged], sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest(), hashlib.sha256(verdicts).hexdigest()


# 1: every build decoded by a worker process (decoding.py); 0: in the building thread
@pytest.mark.parametrize("parallel_from", [0, 1])
def test_packages_body_and_verdicts_are_the_recorded_ones(parallel_from: int) -> None:
    assert _digests(ClientPolicy(), parallel_from) == (
        "65a699c3bd9ee3584fe7d215320758c3e11523bf95cb54a827acddb68ab3863a",
        "b13900894ab04de35d4a1929c4b373eeed0aeee714fe89cbe5864760936daefc",
    )


@pytest.mark.parametrize("parallel_from", [0, 1])
def test_under_a_sharing_policy_and_no_builder_needed_too(parallel_from: int) -> None:
    assert _digests(ClientPolicy(min_builders=0, sharing=SAME_ISA), parallel_from) == (
        "78c7a7bf995aaa8f73c0801e2fb71a08c17382ad2731bfc49275f80960620700",
        "d2459417844b536dadc86bc3626a54b214831910ef5147f9ea07f9600a69f0ab",
    )
