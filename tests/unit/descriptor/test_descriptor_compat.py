"""The compatibility predicate: schema/descriptor.md, section 5."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ipfsbin.descriptor import (
    BuildFacts,
    HostProfile,
    OptProfile,
    Package,
    UseConfig,
    check_compatible,
    normalize,
    normalize_cflags,
    target_runs_on,
    verify_compatible,
)
from ipfsbin.errors import DescriptorError

AMD64 = "x86_64-pc-linux-gnu"

FACTS = BuildFacts(
    chost=AMD64,
    arch="amd64",
    profile="default/linux/amd64/23.0",
    libc="glibc",
    libc_version="2.39-r6",
    compiler="gcc",
    compiler_version="13.2.1_p20240210",
    cflags="-O2 -march=haswell -pipe",
    cxxflags="-O2 -march=haswell -pipe",
    ldflags="-Wl,-O1 -Wl,--as-needed",
    cpv="dev-libs/libfoo-1.2.3-r1",
    slot="0/1.2",
    repository="gentoo",
    eapi="8",
    use="amd64 ssl",
    iuse="+ssl test",
    iuse_effective="amd64 ssl test",
    rdepend="dev-libs/openssl:0/3= || ( dev-libs/alt:1/1= dev-libs/other )",
    depend="dev-libs/headers:0/5=",
    requires="x86_64: libc.so.6 libssl.so.3",
)


def _host(**change: Any) -> HostProfile:
    cflags = change.pop("cflags", "-O2 -march=native -pipe")
    cxxflags = change.pop("cxxflags", None)
    target = change.get("target", "haswell")
    chost = change.get("chost", AMD64)
    values: dict[str, Any] = {
        "chost": AMD64,
        "target": "haswell",
        "libc": "glibc",
        "libc_version": "2.39-r6",
        "compiler": "gcc",
        "compiler_version": "13.2.1_p20240210",
        "cflags": normalize_cflags(cflags, chost=chost, host_target=target),
        "cxxflags": None
        if cxxflags is None
        else normalize_cflags(cxxflags, chost=chost, host_target=target),
        "use": {
            "dev-libs/libfoo": UseConfig(use=frozenset({"ssl"}), iuse=frozenset({"ssl", "test"}))
        },
        "installed": {"dev-libs/openssl": {"0": "3"}},
    }
    values.update(change)
    return HostProfile(**values)


def _package(**change: str) -> Package:
    return normalize(dataclasses.replace(FACTS, **change), host_target="haswell")


# (id, package changes, host changes, expected [(axis, reason)]; [] = compatible)
CASES: list[tuple[str, dict[str, str], dict[str, Any], list[tuple[str, str]]]] = [
    ("identical", {}, {}, []),
    ("descendant-host", {}, {"target": "skylake"}, []),
    (
        "far-descendant-host",
        {"cflags": "-O2 -march=x86-64", "cxxflags": "-O2 -march=x86-64"},
        {"target": "zen4"},
        [],
    ),
    (
        "v3-on-zen3",
        {"cflags": "-O2 -march=x86-64-v3", "cxxflags": "-O2 -march=x86-64-v3"},
        {"target": "zen3"},
        [],
    ),
    ("older-compiler-on-builder", {"compiler_version": "12.3.1_p20230526"}, {}, []),
    ("older-libc-on-builder", {"libc_version": "2.38-r13"}, {}, []),
    ("libc-revision-ignored", {"libc_version": "2.39-r9"}, {}, []),
    (
        "code-only-flags-differ",
        {
            "cflags": "-O2 -march=haswell -flto -fno-omit-frame-pointer "
            "-fstack-protector-strong -D_FORTIFY_SOURCE=3 -mtune=znver3"
        },
        {},
        [],
    ),
    ("tune-ignored", {"cflags": "-O2 -march=haswell -mtune=generic"}, {}, []),
    ("ldflags-ignored", {"ldflags": "-Wl,-z,now"}, {}, []),
    ("build-dep-not-installed", {}, {"installed": {"dev-libs/openssl": {"0": "3"}}}, []),
    ("any-of-dep-not-installed", {}, {}, []),
    (
        "extra-installed-slots",
        {},
        {"installed": {"dev-libs/openssl": {"0": "3", "1.1": "1.1"}}},
        [],
    ),
    (
        "i686-on-x86_64-cpu",
        {
            "chost": "i686-pc-linux-gnu",
            "cflags": "-O2 -march=pentium4",
            "cxxflags": "-O2 -march=pentium4",
        },
        {"chost": "i686-pc-linux-gnu", "target": "haswell"},
        [],
    ),
    (
        "athlon-xp-on-declared-athlon-xp",
        {
            "chost": "i686-pc-linux-gnu",
            "cflags": "-march=athlon-xp -O3 -pipe -fomit-frame-pointer",
            "cxxflags": "-march=athlon-xp -O3 -pipe -fomit-frame-pointer",
        },
        {"chost": "i686-pc-linux-gnu", "target": "gcc:athlon-xp", "cflags": "-O3"},
        [],
    ),
    (
        "i686-on-declared-athlon-xp",
        {"chost": "i686-pc-linux-gnu", "cflags": "-O2", "cxxflags": "-O2"},
        {"chost": "i686-pc-linux-gnu", "target": "gcc:athlon-xp"},
        [],
    ),
    # refusals
    (
        "other-chost",
        {},
        {"chost": "x86_64-pc-linux-musl", "libc": "glibc"},
        [("chost", "built for CHOST x86_64-pc-linux-gnu, this host is x86_64-pc-linux-musl")],
    ),
    (
        "ancestor-host",
        {},
        {"target": "ivybridge"},
        [
            (
                "target",
                "built for microarchitecture haswell, this host is ivybridge "
                "(not haswell or a descendant)",
            )
        ],
    ),
    (
        "sibling-host",
        {"cflags": "-O2 -march=znver3", "cxxflags": "-O2 -march=znver3"},
        {},
        [
            (
                "target",
                "built for microarchitecture zen3, this host is haswell (not zen3 or a descendant)",
            )
        ],
    ),
    (
        "v4-on-zen3",
        {"cflags": "-O2 -march=x86-64-v4", "cxxflags": "-O2 -march=x86-64-v4"},
        {"target": "zen3"},
        [("target", "built for microarchitecture x86_64_v4, this host is zen3")],
    ),
    (
        "cxx-target-too-new",
        {"cxxflags": "-O2 -march=skylake"},
        {},
        [("target", "built for microarchitecture skylake, this host is haswell")],
    ),
    (
        "athlon-xp-on-archspec-host",
        {
            "chost": "i686-pc-linux-gnu",
            "cflags": "-march=athlon-xp -O2",
            "cxxflags": "-march=athlon-xp -O2",
        },
        {"chost": "i686-pc-linux-gnu", "target": "pentium3"},
        [
            (
                "target",
                "built for microarchitecture gcc:athlon-xp, which archspec does not model: "
                "only a host declared as gcc:athlon-xp accepts it, this host is pentium3",
            )
        ],
    ),
    (
        "pentium4-on-declared-athlon-xp",
        {
            "chost": "i686-pc-linux-gnu",
            "cflags": "-O2 -march=pentium4",
            "cxxflags": "-O2 -march=pentium4",
        },
        {"chost": "i686-pc-linux-gnu", "target": "gcc:athlon-xp"},
        [("target", "built for microarchitecture pentium4, this host is gcc:athlon-xp")],
    ),
    (
        "newer-compiler",
        {"compiler_version": "14.1.1_p20240622"},
        {},
        [
            (
                "compiler",
                "built with gcc 14.1.1_p20240622, this host has gcc 13.2.1_p20240210 (older)",
            )
        ],
    ),
    (
        "newer-compiler-snapshot",
        {"compiler_version": "13.2.1_p20240301"},
        {},
        [
            (
                "compiler",
                "built with gcc 13.2.1_p20240301, this host has gcc 13.2.1_p20240210 (older)",
            )
        ],
    ),
    (
        "other-compiler-family",
        {"compiler": "clang", "compiler_version": "17.0.6"},
        {},
        [("compiler", "built with clang 17.0.6, this host has gcc")],
    ),
    (
        "newer-libc",
        {"libc_version": "2.40"},
        {},
        [("libc", "built against glibc 2.40, this host has glibc 2.39-r6 (older)")],
    ),
    (
        "other-libc",
        {"libc": "musl", "libc_version": "1.2.5"},
        {},
        [("libc", "built against musl 1.2.5, this host has glibc")],
    ),
    (
        "other-opt-level",
        {"cflags": "-O3 -march=haswell", "cxxflags": "-O3 -march=haswell"},
        {},
        [("opt", "CFLAGS -O3, this host uses -O2"), ("opt", "CXXFLAGS -O3, this host uses -O2")],
    ),
    (
        "ofast",
        {"cflags": "-Ofast -march=haswell"},
        {},
        [("opt", "CFLAGS -Ofast, this host uses -O2")],
    ),
    (
        "host-cxx-opt-differs",
        {},
        {"cxxflags": "-O3"},
        [("opt", "CXXFLAGS -O2, this host uses -O3")],
    ),
    (
        "fast-math",
        {"cflags": "-O2 -march=haswell -ffast-math"},
        {},
        [("flags", "CFLAGS has -ffast-math, this host's does not")],
    ),
    (
        "host-has-abi-flag",
        {},
        {"cflags": "-O2 -D_TIME_BITS=64"},
        [
            ("flags", "CFLAGS lacks -D_TIME_BITS=64, which this host's has"),
            ("flags", "CXXFLAGS lacks -D_TIME_BITS=64, which this host's has"),
        ],
    ),
    (
        "isa-flag",
        {"cflags": "-O2 -march=haswell -mavx512f"},
        {},
        [("flags", "CFLAGS has -mavx512f, this host's does not")],
    ),
    (
        "unknown-flag-must-match",
        {"cxxflags": "-O2 -march=haswell -fno-exceptions"},
        {},
        [("flags", "CXXFLAGS has -fno-exceptions, this host's does not")],
    ),
    (
        "use-differs",
        {"use": "amd64"},
        {},
        [("use", "USE differs for dev-libs/libfoo: built with nothing more, this host wants ssl")],
    ),
    (
        "use-differs-both-ways",
        {"use": "amd64 test"},
        {},
        [("use", "USE differs for dev-libs/libfoo: built with test, this host wants ssl")],
    ),
    (
        "iuse-differs",
        {"iuse": "ssl test gtk", "iuse_effective": "amd64 gtk ssl test"},
        {},
        [("use", "IUSE differs for dev-libs/libfoo: package has gtk")],
    ),
    (
        "no-use-for-package",
        {},
        {"use": {}},
        [("use", "this host states no USE flags for dev-libs/libfoo")],
    ),
    (
        "subslot-differs",
        {},
        {"installed": {"dev-libs/openssl": {"0": "1.1"}}},
        [("deps", "built against dev-libs/openssl:0/3, this host has dev-libs/openssl:0/1.1")],
    ),
    (
        "runtime-dep-missing",
        {},
        {"installed": {}},
        [("deps", "built against dev-libs/openssl:0/3, which this host does not have installed")],
    ),
    (
        "runtime-dep-other-slot",
        {},
        {"installed": {"dev-libs/openssl": {"1.1": "1.1"}}},
        [("deps", "which this host does not have installed (it has dev-libs/openssl:1.1/1.1)")],
    ),
    (
        "build-dep-subslot-differs",
        {},
        {"installed": {"dev-libs/openssl": {"0": "3"}, "dev-libs/headers": {"0": "6"}}},
        [("deps", "built against dev-libs/headers:0/5, this host has dev-libs/headers:0/6")],
    ),
    (
        "any-of-dep-subslot-differs",
        {},
        {"installed": {"dev-libs/openssl": {"0": "3"}, "dev-libs/alt": {"1": "2"}}},
        [("deps", "built against dev-libs/alt:1/1, this host has dev-libs/alt:1/2")],
    ),
    (
        "many-at-once",
        {"libc_version": "2.41", "cflags": "-O3 -march=znver4", "cxxflags": "-O3 -march=znver4"},
        {"installed": {}},
        [
            ("target", "zen4"),
            ("libc", "2.41"),
            ("opt", "CFLAGS -O3"),
            ("opt", "CXXFLAGS -O3"),
            ("deps", "dev-libs/openssl:0/3"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("package_change", "host_change", "expected"),
    [pytest.param(p, h, e, id=i) for i, p, h, e in CASES],
)
def test_check_compatible(
    package_change: dict[str, str], host_change: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    result = check_compatible(_package(**package_change), _host(**host_change))
    assert result.ok is (not expected)
    assert len(result.mismatches) == len(expected), result.reasons
    for mismatch, (axis, fragment) in zip(result.mismatches, expected, strict=True):
        assert mismatch.axis == axis
        assert fragment in mismatch.reason


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert sum(1 for case in CASES if case[3]) >= 25


def test_ignore_use_leaves_use_to_portage() -> None:
    package = _package(use="amd64")
    assert not check_compatible(package, _host()).ok
    assert check_compatible(package, _host(), ignore_use=True).ok


def test_verify_compatible_raises_with_all_reasons() -> None:
    package = _package(libc_version="2.40", use="amd64")
    verify_compatible(_package(), _host())
    with pytest.raises(DescriptorError) as info:
        verify_compatible(package, _host())
    message = info.value.message
    assert message.startswith("dev-libs/libfoo-1.2.3-r1 does not fit this host: ")
    assert "glibc 2.40" in message and "USE differs" in message
    assert info.value.hint is not None


def test_host_profile_refuses_unknown_target() -> None:
    with pytest.raises(ValueError, match="host target 'pentium9'"):
        _host(target="pentium9", cflags="-O2")
    with pytest.raises(ValueError, match="not a version"):
        _host(compiler_version="new")


def test_host_profile_is_a_snapshot() -> None:
    installed = {"dev-libs/openssl": {"0": "3"}}
    host = _host(installed=installed)
    installed["dev-libs/openssl"]["0"] = "1.1"
    assert host.installed["dev-libs/openssl"]["0"] == "3"


@pytest.mark.parametrize(
    ("target", "host", "runs"),
    [
        ("haswell", "haswell", True),
        ("haswell", "skylake", True),
        ("skylake", "haswell", False),
        ("x86_64", "zen3", True),
        ("zen3", "haswell", False),
        ("x86_64_v3", "haswell", True),
        ("x86_64_v3", "sandybridge", False),
        ("i686", "x86_64", True),
        ("pentium4", "x86_64", True),
        ("prescott", "x86_64", False),
        ("prescott", "nocona", True),
        ("x86_64", "pentium4", False),
        ("aarch64", "neoverse_n1", True),
        ("neoverse_n1", "aarch64", False),
        ("haswell", "neoverse_n1", False),
        ("gcc:athlon-xp", "gcc:athlon-xp", True),
        ("gcc:athlon-xp", "pentium3", False),
        ("pentium3", "gcc:athlon-xp", True),
        ("pentium4", "gcc:athlon-xp", False),
        ("gcc:k8", "gcc:athlon-xp", False),
        ("future_cpu", "haswell", False),
    ],
)
def test_target_runs_on(target: str, host: str, runs: bool) -> None:
    assert target_runs_on(target, host) is runs


def test_unknown_package_target_reason() -> None:
    package = _package()
    cflags = OptProfile(target="future_cpu", tune=None, opt="2", flags=())
    platform = dataclasses.replace(package.platform, cflags=cflags)
    descriptor = dataclasses.replace(package.descriptor, platform=platform.cid)
    result = check_compatible(Package(descriptor=descriptor, platform=platform), _host())
    assert result.mismatches[0].axis == "target"
    assert "unknown to this client's archspec" in result.mismatches[0].reason
