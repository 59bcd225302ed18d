"""policy.sharing in the catalog: what a host gives up, what it never does, and the order.

Flags are normalized by the real GCC of this machine (as the descriptor tests
do); the host's CPU has exactly what GCC enables for its own ``-march``.
"""

from __future__ import annotations

import dataclasses
import subprocess
from typing import Any

import pytest

from ipfsbin.catalog import BuildCache, build_catalog, explain
from ipfsbin.cli.client import _render_explain
from ipfsbin.config import ClientPolicy
from ipfsbin.descriptor import EXACT, SAME_ISA, SharingPolicy, normalize_cflags
from ipfsbin.descriptor.model import Platform
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info
from tests.unit.maintainer.maintainer_helpers import PLATFORM, T0

AMD64 = "x86_64-pc-linux-gnu"
# GCC 13's -march=znver4 is znver3 plus these (PTA_ZNVER4); GCC 12 does not know
# the name, so the same feature set is spelled out, as the descriptor tests do.
ZNVER4_EXTRAS = (
    "-mavx512f -mavx512dq -mavx512ifma -mavx512cd -mavx512bw -mavx512vl -mavx512bf16 "
    "-mavx512vbmi -mavx512vbmi2 -mavx512vnni -mavx512bitalg -mavx512vpopcntdq "
    "-mgfni -mvaes -mvpclmulqdq"
)
POLICIES = {
    "exact": EXACT,
    "opt": SharingPolicy(may_differ=frozenset({"opt"})),
    "flags+math": SharingPolicy(may_differ=frozenset({"flags", "math"})),
    "same-isa": SAME_ISA,
}


def _znver4() -> str:
    """-march=znver4 where this GCC knows it, else znver3 with znver4's extensions."""
    known = subprocess.run(
        ["gcc", "-march=znver4", "-E", "-x", "c", "/dev/null"],  # noqa: S607
        capture_output=True,
        check=False,
    )
    return "-O2 -march=znver4" if known.returncode == 0 else f"-O2 -march=znver3 {ZNVER4_EXTRAS}"


def _platform(cflags: str) -> Platform:
    return dataclasses.replace(
        PLATFORM, cflags=normalize_cflags(cflags, chost=AMD64), cxxflags=None
    )


def _host(cflags: str = "-O3 -march=znver3", cpu: str = "-O2 -march=znver3") -> Any:
    return host_info(
        cflags=normalize_cflags(cflags, chost=AMD64),
        cpu_features=frozenset(normalize_cflags(cpu, chost=AMD64).features),
        target="zen3",
    )


def _offers(index: Index, policy: SharingPolicy, host: Any = None) -> list[Any]:
    catalog = build_catalog(
        [index.head()],
        host=host or _host(),
        policy=ClientPolicy(sharing=policy),
        cache=BuildCache(index.store),
        now=NOW,
    )
    return list(catalog.offers.get("k51test", ()))


def _explain(index: Index, policy: SharingPolicy, host: Any = None) -> list[Any]:
    return explain(
        "app-misc/foo",
        [index.head()],
        host=host or _host(),
        policy=ClientPolicy(sharing=policy),
        cache=BuildCache(index.store),
        now=NOW,
    )


def test_znver3_o3_host_takes_an_o2_v3_build_under_same_isa_only() -> None:
    index = Index()
    index.add("v3-o2", "app-misc/foo-1", _platform("-O2 -march=x86-64-v3"))
    assert [o.build.manifest_cid for o in _offers(index, SAME_ISA)] == [index.manifests["v3-o2"]]
    assert _offers(index, EXACT) == []
    (refused,) = _explain(index, EXACT)
    assert [(r.axis, r.kind) for r in refused.refusals] == [
        ("cflags", "preference"),
        ("cflags", "preference"),
    ]
    assert refused.refusals[0].reason == "CFLAGS -O2, this host uses -O3"
    assert refused.refusals[0].accepted_by == 'sharing = ["opt"] or sharing = "same-isa"'
    (offered,) = _explain(index, SAME_ISA)
    assert offered.ok and offered.rank == 1
    assert [d.reason for d in offered.differences][0] == "CFLAGS -O2, this host uses -O3"


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_znver4_build_is_refused_on_a_znver3_host_for_safety_under_every_policy(
    name: str,
) -> None:
    index = Index()
    index.add("zen4", "app-misc/foo-1", _platform(_znver4()))
    policy = POLICIES[name]
    assert _offers(index, policy) == []
    (refused,) = _explain(index, policy)
    isa = [r for r in refused.refusals if r.axis == "microarchitecture"]
    assert isa and all(r.kind == "safety" and r.accepted_by is None for r in isa)
    assert "avx512f" in isa[0].reason and "this CPU lacks them" in isa[0].reason


def test_the_hosts_own_o3_build_comes_first_where_one_exists() -> None:
    index = Index()
    index.add("v3-o2", "app-misc/foo-1", _platform("-O2 -march=x86-64-v3"), build_time=T0 + 9)
    index.add("v2-o3", "app-misc/foo-1", _platform("-O3 -march=x86-64-v2"), build_time=T0)
    index.add("zen3-o3", "app-misc/foo-1", _platform("-O3 -march=znver3"), build_time=T0 - 9)
    order = [o.build.manifest_cid for o in _offers(index, SAME_ISA)]
    # Matching preferences first (closest CPU first among them), then the rest.
    assert order == [index.manifests[n] for n in ("zen3-o3", "v2-o3", "v3-o2")]
    assert [o.build.manifest_cid for o in _offers(index, EXACT)] == order[:2]


def test_fast_math_is_never_given_to_a_host_that_did_not_ask_for_it() -> None:
    index = Index()
    index.add("fast", "app-misc/foo-1", _platform("-O3 -march=znver3 -ffast-math"))
    assert _offers(index, SAME_ISA) == []
    (refused,) = _explain(index, SAME_ISA)
    assert {(r.axis, r.kind) for r in refused.refusals} == {("cflags", "safety")}
    assert "floating-point semantics" in refused.refusals[0].reason


def test_a_fast_math_host_may_take_a_strict_build_as_a_preference() -> None:
    host = _host(cflags="-O3 -march=znver3 -ffast-math")
    index = Index()
    index.add("strict", "app-misc/foo-1", _platform("-O3 -march=znver3"))
    assert _offers(index, EXACT, host) == []
    assert len(_offers(index, SharingPolicy(may_differ=frozenset({"math"})), host)) == 1


def test_explain_words_mark_safety_and_preference() -> None:
    index = Index()
    index.add("v3-o2", "app-misc/foo-1", _platform("-O2 -march=x86-64-v3"))
    index.add("zen4", "app-misc/foo-1", _platform(_znver4()), repository="r2")
    text = _render_explain(
        {"atom": "app-misc/foo", "candidates": [c.to_json() for c in _explain(index, EXACT)]}
    )
    assert "cflags: [preference] CFLAGS -O2, this host uses -O3" in text
    assert 'accepted with policy.sharing: sharing = ["opt"] or sharing = "same-isa"' in text
    assert "microarchitecture: [safety] CFLAGS build for" in text
    text = _render_explain(
        {"atom": "app-misc/foo", "candidates": [c.to_json() for c in _explain(index, SAME_ISA)]}
    )
    assert "gives up (cflags, accepted by policy.sharing): CFLAGS -O2, this host uses -O3" in text
