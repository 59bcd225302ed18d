"""The compatibility predicate: schema/descriptor.md, section 5."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ipfsbin.descriptor import (
    BuildFacts,
    HostProfile,
    Package,
    UseConfig,
    check_compatible,
    check_platform,
    lacking,
    normalize,
    normalize_cflags,
    verify_compatible,
)
from ipfsbin.descriptor.isa import cpu_flag_features
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


def _cpu(cflags: str, chost: str = AMD64) -> frozenset[str]:
    """The features of a CPU that has exactly what GCC enables for ``cflags``."""
    return frozenset(normalize_cflags(cflags, chost=chost).features)


def _host(**change: Any) -> HostProfile:
    cflags = change.pop("cflags", "-O2 -pipe")
    cxxflags = change.pop("cxxflags", None)
    chost = change.get("chost", AMD64)
    cpu = change.pop("cpu", "-march=haswell")
    values: dict[str, Any] = {
        "chost": AMD64,
        "cpu_features": _cpu(cpu, chost),
        "libc": "glibc",
        "libc_version": "2.39-r6",
        "compiler": "gcc",
        "compiler_version": "13.2.1_p20240210",
        "cflags": normalize_cflags(cflags, chost=chost),
        "cxxflags": None if cxxflags is None else normalize_cflags(cxxflags, chost=chost),
        "use": {
            "dev-libs/libfoo": UseConfig(use=frozenset({"ssl"}), iuse=frozenset({"ssl", "test"}))
        },
        "installed": {"dev-libs/openssl": {"0": "3"}},
    }
    values.update(change)
    return HostProfile(**values)


def _package(**change: str) -> Package:
    return normalize(dataclasses.replace(FACTS, **change))


def _flags(cflags: str) -> dict[str, str]:
    return {"cflags": cflags, "cxxflags": cflags}


I686 = {"chost": "i686-pc-linux-gnu"}
ARM64 = {"chost": "aarch64-unknown-linux-gnu"}
HARDENED = (
    "-O2 -fstack-protector-all -D_FORTIFY_SOURCE=3 -fstack-clash-protection "
    "-fcf-protection -ftrivial-auto-var-init=zero"
)
PROVIDES = {"x86_64": frozenset({"libc.so.6", "libssl.so.3"})}

# (id, package changes, host changes, expected [(axis, reason)]; [] = compatible)
CASES: list[tuple[str, dict[str, str], dict[str, Any], list[tuple[str, str]]]] = [
    ("identical", {}, {}, []),
    ("descendant-cpu", {}, {"cpu": "-march=skylake"}, []),
    ("x86-64-on-zen4-cpu", _flags("-O2 -march=x86-64"), {"cpu": "-march=znver3"}, []),
    ("v3-on-zen3-cpu", _flags("-O2 -march=x86-64-v3"), {"cpu": "-march=znver3"}, []),
    ("older-compiler-on-builder", {"compiler_version": "12.3.1_p20230526"}, {}, []),
    ("older-libc-on-builder", {"libc_version": "2.38-r13"}, {}, []),
    ("libc-revision-ignored", {"libc_version": "2.39-r9"}, {}, []),
    (
        "code-only-flags-differ-and-more-hardened",
        {
            "cflags": "-O2 -march=haswell -flto -fno-omit-frame-pointer "
            "-fstack-protector-strong -D_FORTIFY_SOURCE=3 -mtune=znver3"
        },
        {},
        [],
    ),
    ("tune-ignored", {"cflags": "-O2 -march=haswell -mtune=generic"}, {}, []),
    ("ldflags-ignored", {"ldflags": "-Wl,-z,now"}, {}, []),
    ("any-of-dep-not-installed", {}, {}, []),
    (
        "extra-installed-slots",
        {},
        {"installed": {"dev-libs/openssl": {"0": "3", "1.1": "1.1"}}},
        [],
    ),
    (
        "i686-on-pentium4-cpu",
        {**I686, **_flags("-O2 -march=pentium4")},
        {**I686, "cpu": "-march=pentium4"},
        [],
    ),
    (
        "athlon-xp-on-athlon-xp-cpu",
        {**I686, **_flags("-march=athlon-xp -O3 -pipe -fomit-frame-pointer")},
        {**I686, "cpu": "-march=athlon-xp", "cflags": "-O3"},
        [],
    ),
    (
        "pentium-line-on-pentium-cpu",
        _flags("-O2 -march=ivybridge -mno-avx -mno-aes -mno-rdrnd"),
        {"cpu": "-march=ivybridge -mno-avx -mno-aes -mno-rdrnd"},
        [],
    ),
    (
        "cortex-a72-on-raspberry-pi-4",
        {**ARM64, **_flags("-O2 -mcpu=cortex-a72")},
        {**ARM64, "cpu": "-mcpu=cortex-a72"},
        [],
    ),
    (
        "armv8-crc-crypto-on-cortex-a76",
        {**ARM64, **_flags("-O2 -march=armv8-a+crc+crypto")},
        {**ARM64, "cpu": "-mcpu=cortex-a76+crypto"},
        [],
    ),
    (
        "openmp-runtime-provided",
        _flags("-O2 -march=haswell -fopenmp"),
        {
            "cflags": "-O2 -fopenmp",
            "provides": {"x86_64": PROVIDES["x86_64"] | {"libgomp.so.1"}},
        },
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
        "older-cpu",
        {},
        {"cpu": "-march=ivybridge"},
        [("isa", "CFLAGS build for x86_64_v3: needs abm, avx2, bmi1, bmi2, fma and movbe")],
    ),
    (
        "sibling-cpu",
        _flags("-O2 -march=znver3"),
        {},
        [("isa", "CFLAGS build for zen3: needs 3dnowprefetch, adx, aes, clflushopt")],
    ),
    (
        "v4-on-zen3-cpu",
        _flags("-O2 -march=x86-64-v4"),
        {"cpu": "-march=znver3"},
        [("isa", "needs avx512bw, avx512cd, avx512dq, avx512f and avx512vl, this CPU lacks them")],
    ),
    (
        "cxx-isa-too-new",
        {"cxxflags": "-O2 -march=skylake"},
        {},
        [("isa", "CXXFLAGS build for")],
    ),
    (
        # Unsafe case 1: -march gives the ISA, -mcpu only tunes; armv8.2 atomics on a Pi 4.
        "armv8.2-with-mcpu-a72-on-raspberry-pi-4",
        {**ARM64, **_flags("-O2 -march=armv8.2-a -mcpu=cortex-a72")},
        {**ARM64, "cpu": "-mcpu=cortex-a72"},
        # No core name in the words: only the features (section 5).
        [("isa", "CFLAGS build: needs asimdrdm and atomics, this CPU lacks them")],
    ),
    (
        # Unsafe case 2: -mno-avx -mavx2 is AVX2 code.
        "avx2-after-no-avx-on-nehalem",
        _flags("-O2 -mno-avx -mavx2"),
        {"cpu": "-march=nehalem"},
        [("isa", "needs avx, avx2 and xsave, this CPU lacks them")],
    ),
    (
        "fast-math-order",
        _flags("-O2 -march=haswell -ffast-math -fno-finite-math-only"),
        {"cflags": "-O2 -fno-finite-math-only -ffast-math"},
        [
            ("math", "CFLAGS floating-point semantics"),
            ("math", "CXXFLAGS floating-point semantics"),
        ],
    ),
    (
        # Unsafe case 3: the parallelized build needs libgomp.
        "parallelize-loops-needs-libgomp",
        {"cflags": "-O2 -march=haswell -ftree-parallelize-loops=4"},
        {"provides": PROVIDES},
        [
            ("flags", "CFLAGS has -ftree-parallelize-loops=4, this host's does not"),
            ("runtime", "its build flags: needs libgomp.so.1, this host lacks it"),
        ],
    ),
    (
        # Unsafe case 4: a hardened host gets no less hardened build.
        "less-hardened-than-host",
        {"cflags": "-O2 -march=haswell -fno-stack-protector"},
        {"cflags": HARDENED},
        [
            (
                "hardening",
                "CFLAGS build is less hardened: stack protector none, this host asks "
                "for all; _FORTIFY_SOURCE 0, this host asks for 3; stack-clash protection off",
            ),
            ("hardening", "CXXFLAGS build is less hardened: stack protector none"),
        ],
    ),
    (
        # Unsafe case 5: LDFLAGS that change the runtime libraries.
        "libunwind-from-ldflags",
        {"ldflags": "-Wl,-O1 -fuse-ld=lld -rtlib=compiler-rt -unwindlib=libunwind"},
        {},
        [("runtime", "needs libunwind.so.1; which libraries this host provides is unknown")],
    ),
    (
        "requires-not-provided",
        {},
        {"provides": {"x86_64": frozenset({"libc.so.6"})}},
        [("runtime", "REQUIRES needs libssl.so.3, this host lacks it")],
    ),
    (
        # Unsafe case 6: CPU_FLAGS_X86 in USE, checked whatever the USE policy.
        "cpu-flags-use-on-older-cpu",
        {
            "use": "amd64 ssl cpu_flags_x86_avx2",
            "iuse": "+ssl test cpu_flags_x86_avx2",
            "iuse_effective": "amd64 ssl test cpu_flags_x86_avx2",
            **_flags("-O2"),
        },
        {"cpu": "-march=nehalem"},
        [
            ("isa", "built with USE=cpu_flags_x86_avx2: needs avx2, this CPU lacks it"),
            ("use", "IUSE differs"),
            ("use", "USE differs"),
        ],
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
        # Clang's -march=haswell also enables INVPCID, which GCC's does not.
        [
            ("isa", "needs invpcid, this CPU lacks it"),
            ("compiler", "built with clang 17.0.6, this host has gcc"),
        ],
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
        _flags("-O3 -march=haswell"),
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
        [("math", "CFLAGS floating-point semantics -fassociative-math")],
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
        "isa-flag-on-cpu-without-it",
        {"cflags": "-O2 -march=haswell -mavx512f"},
        {},
        [("isa", "needs avx512f, this CPU lacks it")],
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
        {"libc_version": "2.41", **_flags("-O3 -march=znver3")},
        {"installed": {}},
        [
            ("isa", "zen3"),
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


def test_host_profile_refuses_bad_values() -> None:
    with pytest.raises(DescriptorError, match="not one ipfsbin describes"):
        _host(chost="armv7a-unknown-linux-gnueabihf", cflags="-O2")
    with pytest.raises(ValueError, match="not a version"):
        _host(compiler_version="new")


def test_host_profile_is_a_snapshot() -> None:
    installed = {"dev-libs/openssl": {"0": "3"}}
    host = _host(installed=installed)
    installed["dev-libs/openssl"]["0"] = "1.1"
    assert host.installed["dev-libs/openssl"]["0"] == "3"


def test_refusal_carries_the_feature_reason_as_data_and_words() -> None:
    """What ``ipfsbin explain`` shows: the features the CPU lacks, and a sentence."""
    package = _package(cflags="-O2 -march=haswell -mavx512f")
    result = check_compatible(package, _host())
    assert result.missing_features == ("avx512f",)
    (mismatch,) = result.mismatches
    assert mismatch.reason.endswith("needs avx512f, this CPU lacks it")
    assert result.to_data() == {
        "ok": False,
        "safe": False,
        "mismatches": [
            {
                "axis": "isa",
                "kind": "safety",
                "reason": mismatch.reason,
                "missing": ["avx512f"],
                "source": "CFLAGS",
            }
        ],
    }


def test_policy_may_accept_less_hardened_builds() -> None:
    package = _package(
        cflags="-O2 -march=haswell -fno-stack-protector", cxxflags="-O2 -march=haswell"
    )
    host = _host(cflags=HARDENED)
    assert {m.axis for m in check_compatible(package, host).mismatches} == {"hardening"}
    assert check_compatible(package, host, allow_weaker_hardening=True).ok
    assert check_compatible(package, host).mismatches[0].missing == (
        "auto_var_init",
        "cf_protection",
        "fortify",
        "stack_clash",
        "stack_protector",
    )


def test_cpu_feature_use_flags_are_checked_even_when_use_is_ignored() -> None:
    package = _package(
        use="amd64 ssl cpu_flags_x86_avx2",
        iuse="+ssl test cpu_flags_x86_avx2",
        iuse_effective="amd64 ssl test cpu_flags_x86_avx2",
        cflags="-O2",
        cxxflags="-O2",
    )
    result = check_compatible(package, _host(cpu="-march=nehalem"), ignore_use=True)
    assert [(m.axis, m.source, m.missing) for m in result.mismatches] == [
        ("isa", "USE=cpu_flags_x86_avx2", ("avx2",))
    ]
    assert check_compatible(package, _host(cpu="-march=haswell"), ignore_use=True).ok


def test_runtime_flags_match_a_host_using_them_itself() -> None:
    package = _package(ldflags="-unwindlib=libunwind")
    assert not check_compatible(package, _host()).ok
    assert check_compatible(package, _host(runtime=frozenset({"libunwind.so.1"}))).ok
    provides = {"x86_64": PROVIDES["x86_64"] | {"libunwind.so.1"}}
    assert check_compatible(package, _host(provides=provides)).ok


@pytest.mark.parametrize(
    ("needed", "cpu", "missing"),
    [
        ({"avx2", "fma"}, frozenset({"avx2"}), ("fma",)),
        ({"sse2"}, frozenset({"sse2", "avx"}), ()),
    ],
)
def test_lacking(needed: set[str], cpu: frozenset[str], missing: tuple[str, ...]) -> None:
    assert lacking(needed, cpu) == missing


@pytest.mark.parametrize(
    ("flag", "features"),
    [
        ("cpu_flags_x86_avx2", {"avx2"}),
        ("cpu_flags_x86_fma3", {"fma"}),
        ("cpu_flags_x86_pclmul", {"pclmulqdq"}),
        ("cpu_flags_x86_sha", {"sha_ni"}),
        ("cpu_flags_x86_mmxext", {"sse"}),
        ("cpu_flags_arm_neon", {"asimd"}),
        ("cpu_flags_arm_v8", set()),
        ("cpu_flags_arm_crc32", {"crc32"}),
        ("cpu_flags_ppc_vsx3", {"arch_3_00"}),
    ],
)
def test_cpu_flag_use_names_features(flag: str, features: set[str]) -> None:
    assert cpu_flag_features([flag, "ssl"]) == {flag: frozenset(features)}


def test_unknown_cpu_flag_use_is_refused() -> None:
    with pytest.raises(DescriptorError, match="cpu_flags_arm_iwmmxt"):
        cpu_flag_features(["cpu_flags_arm_iwmmxt"])


def test_check_platform_refuses_only_what_no_build_of_the_platform_could_pass() -> None:
    platform = _package().platform
    host = _host()
    assert check_platform(platform, host).ok
    # a newer compiler and other flags are per-build or policy questions: kept
    assert check_platform(platform, _host(compiler_version="14.1", cflags="-O3")).ok
    cases = {
        "chost": dataclasses.replace(platform, chost="aarch64-unknown-linux-gnu", arch="arm64"),
        "isa": _package(cflags="-O2 -march=skylake-avx512").platform,
        "compiler": dataclasses.replace(platform, compiler="clang"),
        "libc": dataclasses.replace(platform, libc_version="2.41"),
    }
    for axis, other in cases.items():
        found = check_platform(other, host)
        assert [m.axis for m in found.mismatches] == [axis], (axis, found.reasons)
    i686 = dataclasses.replace(platform, chost="i686-pc-linux-gnu", arch="x86")
    assert not check_platform(i686, host).ok
    assert check_platform(i686, host, accept_chosts=["i686-pc-linux-gnu"]).ok
