"""Flag normalization: schema/descriptor.md, section 3."""

from __future__ import annotations

import pytest

from ipfsbin.descriptor import (
    OptProfile,
    baseline_target,
    is_code_only,
    normalize_cflags,
    normalize_ldflags,
    resolve_march,
)
from ipfsbin.errors import DescriptorError

AMD64 = "x86_64-pc-linux-gnu"
I686 = "i686-pc-linux-gnu"
ARM64 = "aarch64-unknown-linux-gnu"


def _p(target: str, opt: str, flags: tuple[str, ...] = (), tune: str | None = None) -> OptProfile:
    return OptProfile(target=target, tune=tune, opt=opt, flags=flags)


CASES = [
    # (chost, CFLAGS, host_target, expected)
    (
        I686,
        "-march=athlon-xp -O3 -pipe -fomit-frame-pointer",
        None,
        _p("gcc:athlon-xp", "3", ("-fomit-frame-pointer",)),
    ),
    (AMD64, "-O2 -O3", None, _p("x86_64", "3")),
    (AMD64, "-O3 -O2", None, _p("x86_64", "2")),
    (AMD64, "", None, _p("x86_64", "0")),
    (AMD64, "-O", None, _p("x86_64", "1")),
    (AMD64, "-O9", None, _p("x86_64", "3")),
    (AMD64, "-Ofast", None, _p("x86_64", "fast")),
    (AMD64, "-Os -pipe", None, _p("x86_64", "s")),
    (
        AMD64,
        "-fomit-frame-pointer -fno-omit-frame-pointer -O2",
        None,
        _p("x86_64", "2", ("-fno-omit-frame-pointer",)),
    ),
    (
        AMD64,
        "-fno-omit-frame-pointer -fomit-frame-pointer -O2",
        None,
        _p("x86_64", "2", ("-fomit-frame-pointer",)),
    ),
    (
        AMD64,
        "-O2 -g -ggdb3 -g0 -gsplit-dwarf -gdwarf-5 -fvar-tracking-assignments",
        None,
        _p("x86_64", "2"),
    ),
    (AMD64, "-O2 -Wall -Werror=format-security -Wno-error -w", None, _p("x86_64", "2")),
    (
        AMD64,
        "-O2 -fdiagnostics-color=always -frecord-gcc-switches -fmessage-length=0",
        None,
        _p("x86_64", "2"),
    ),
    (AMD64, "-O2 -flto=4", None, _p("x86_64", "2", ("-flto",))),
    (AMD64, "-flto=auto -O2", None, _p("x86_64", "2", ("-flto",))),
    (AMD64, "-flto -fno-lto -O2", None, _p("x86_64", "2", ("-fno-lto",))),
    (
        AMD64,
        "-fstack-protector-all -fstack-protector-strong",
        None,
        _p("x86_64", "0", ("-fstack-protector-strong",)),
    ),
    (AMD64, "-m32 -m64", None, _p("x86_64", "0", ("-m64",))),
    (
        AMD64,
        "-mavx2 -mno-avx2 -mfpmath=sse",
        None,
        _p("x86_64", "0", ("-mfpmath=sse", "-mno-avx2")),
    ),
    (
        AMD64,
        "-D_FORTIFY_SOURCE=2 -D_FORTIFY_SOURCE=3 -U_GLIBCXX_ASSERTIONS",
        None,
        _p("x86_64", "0", ("-D_FORTIFY_SOURCE=3", "-U_GLIBCXX_ASSERTIONS")),
    ),
    (
        AMD64,
        "-fexotic-new-flag -fexotic-new-flag --param=l1-cache-size=32",
        None,
        _p("x86_64", "0", ("--param=l1-cache-size=32", "-fexotic-new-flag")),
    ),
    (AMD64, "-march=x86-64-v3", None, _p("x86_64_v3", "0")),
    (AMD64, "-march=x86_64_v3", None, _p("x86_64_v3", "0")),
    (AMD64, "-march=x86-64-v3 -mtune=generic", None, _p("x86_64_v3", "0")),
    (AMD64, "-march=x86-64-v3 -mtune=znver3", None, _p("x86_64_v3", "0", tune="zen3")),
    (AMD64, "-march=haswell -mtune=haswell", None, _p("haswell", "0")),
    (AMD64, "-march=haswell -mtune=generic", None, _p("haswell", "0", tune="generic")),
    (AMD64, "-march=core-avx2", None, _p("haswell", "0")),
    (AMD64, "-march=skylake", None, _p("skylake", "0")),
    (AMD64, "-march=skylake-avx512", None, _p("skylake_avx512", "0")),
    (AMD64, "-march=znver3", None, _p("zen3", "0")),
    (AMD64, "-march=bdver1", None, _p("bulldozer", "0")),
    (AMD64, "-march=native -O2", "zen3", _p("zen3", "2")),
    (AMD64, "-march=native -mtune=native", "haswell", _p("haswell", "0")),
    (AMD64, "-march=native -mtune=generic", "x86_64_v4", _p("x86_64_v4", "0", tune="generic")),
    (AMD64, "-march=x86-64 -mtune=native", "zen3", _p("x86_64", "0", tune="zen3")),
    (AMD64, "-march=k8", None, _p("gcc:k8", "0")),
    (AMD64, "-march=haswell -march=znver3", None, _p("zen3", "0")),
    (AMD64, "-mcpu=intel -O2", None, _p("x86_64", "2", tune="intel")),
    (I686, "-O2", None, _p("i686", "2")),
    (I686, "-march=pentium4", None, _p("pentium4", "0")),
    (I686, "-march=pentium-m", None, _p("pentium4", "0")),
    (I686, "-march=haswell -m32", None, _p("haswell", "0", ("-m32",))),
    (ARM64, "-mcpu=neoverse-n1 -O2", None, _p("neoverse_n1", "2")),
    (ARM64, "-march=armv8.2-a", None, _p("armv8.2a", "0")),
    (ARM64, "-O2", None, _p("aarch64", "2")),
    ("powerpc64le-unknown-linux-gnu", "-mcpu=power9 -O2", None, _p("power9le", "2")),
]


@pytest.mark.parametrize(("chost", "cflags", "host_target", "expected"), CASES)
def test_normalize_cflags(
    chost: str, cflags: str, host_target: str | None, expected: OptProfile
) -> None:
    assert normalize_cflags(cflags, chost=chost, host_target=host_target) == expected


def test_order_of_distinct_groups_does_not_matter() -> None:
    a = normalize_cflags("-O2 -pipe -march=haswell -fno-plt -flto", chost=AMD64)
    b = normalize_cflags("-flto -fno-plt -march=haswell -pipe -O2", chost=AMD64)
    assert a == b


# Spellings that must NOT give one profile: the builds they make differ.
DIFFERENT_BUILDS = [
    # -fsanitize= adds to a set; the ASan build needs libasan and behaves differently.
    ("-O2 -fsanitize=address -fsanitize=undefined", "-O2 -fsanitize=undefined"),
    ("-O2 -fsanitize=address,undefined", "-O2 -fsanitize=undefined"),
    # An option and its separate argument stay together.
    ("-O2 -D A -U B", "-O2 -D B -U A"),
    ("-O2 -include a.h -I b", "-O2 -include b -I a.h"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT_BUILDS)
def test_different_builds_get_different_profiles(a: str, b: str) -> None:
    assert normalize_cflags(a, chost=AMD64) != normalize_cflags(b, chost=AMD64)


SAME_BUILD = [
    ("-O2 -fsanitize=address,undefined", "-O2 -fsanitize=undefined -fsanitize=address"),
    ("-O2 -fsanitize=address -fno-sanitize=all -fsanitize=undefined", "-O2 -fsanitize=undefined"),
    ("-O2 -fno-sanitize=address", "-O2"),
    ("-O2 -D FOO=1", "-O2 -DFOO=1"),
    ("-O2 -DFOO=1 -D FOO=2", "-O2 -DFOO=2"),
    ("-O2 --param l1-cache-size=32 --param=l1-cache-size=64", "-O2 --param=l1-cache-size=64"),
]


@pytest.mark.parametrize(("a", "b"), SAME_BUILD)
def test_spellings_of_one_build_get_one_profile(a: str, b: str) -> None:
    assert normalize_cflags(a, chost=AMD64) == normalize_cflags(b, chost=AMD64)


def test_sanitizers_are_kept_one_value_each() -> None:
    profile = normalize_cflags("-O2 -fsanitize=undefined,address", chost=AMD64)
    assert profile.flags == ("-fsanitize=address", "-fsanitize=undefined")


REFUSED = [
    (
        AMD64,
        "-fsanitize=undefined -fno-sanitize=alignment",
        None,
        "both enable (undefined) and disable (alignment) -fsanitize= values",
    ),
    (AMD64, "-march=pentium9", None, "unknown -march=pentium9"),
    (AMD64, "-march=", None, "empty -march="),
    (AMD64, "-march=native", None, "-march=native but no detected microarchitecture"),
    (AMD64, "-mtune=native", None, "-mtune=native but no detected microarchitecture"),
    (AMD64, "-march=native", "pentium99", "detected microarchitecture 'pentium99'"),
    (AMD64, "-march=power9", None, "which CHOST x86_64-pc-linux-gnu cannot run"),
    (AMD64, "-march=pentium4", None, "which CHOST x86_64-pc-linux-gnu cannot run"),
    (AMD64, "-march=athlon-xp", None, "cannot run"),
    (ARM64, "-march=haswell", None, "cannot run"),
    (AMD64, "-Ohigh", None, "unknown optimization level -Ohigh"),
    ("armv7a-unknown-linux-gnueabihf", "-O2", None, "no baseline microarchitecture"),
]


@pytest.mark.parametrize(("chost", "cflags", "host_target", "fragment"), REFUSED)
def test_refused_flags(chost: str, cflags: str, host_target: str | None, fragment: str) -> None:
    with pytest.raises(DescriptorError) as info:
        normalize_cflags(cflags, chost=chost, host_target=host_target)
    assert fragment in info.value.message


def test_unknown_march_has_a_hint() -> None:
    with pytest.raises(DescriptorError) as info:
        resolve_march("pentium9", chost=AMD64, host_target=None)
    assert info.value.hint is not None and "not shared" in info.value.hint


@pytest.mark.parametrize(
    ("chost", "target"),
    [
        (AMD64, "x86_64"),
        (I686, "i686"),
        ("i386-pc-linux-gnu", "x86"),
        (ARM64, "aarch64"),
        ("powerpc64le-unknown-linux-gnu", "ppc64le"),
        ("riscv64-unknown-linux-gnu", "riscv64"),
        ("i586-pc-linux-gnu", "gcc:i586"),
    ],
)
def test_baseline_target(chost: str, target: str) -> None:
    assert baseline_target(chost) == target


LDFLAGS = [
    ("-Wl,-O1 -Wl,--as-needed", ("-Wl,--as-needed",)),
    ("-Wl,-O1,--as-needed,-z,now", ("-Wl,--as-needed", "-Wl,-z,now")),
    ("-Wl,-z,now -Wl,-z,lazy", ("-Wl,-z,lazy",)),
    ("-Wl,-znow", ("-Wl,-z,now",)),
    ("-Wl,--as-needed -Wl,--no-as-needed", ("-Wl,--no-as-needed",)),
    ("-Wl,--hash-style=gnu -Wl,--build-id=sha1 -pipe -g", ()),
    (
        "-Wl,-z,relro -Wl,-z,now -Wl,--sort-common",
        ("-Wl,--sort-common", "-Wl,-z,now", "-Wl,-z,relro"),
    ),
    ("-flto=8 -fuse-ld=mold", ("-flto", "-fuse-ld=mold")),
    ("", ()),
]


@pytest.mark.parametrize(("ldflags", "expected"), LDFLAGS)
def test_normalize_ldflags(ldflags: str, expected: tuple[str, ...]) -> None:
    assert normalize_ldflags(ldflags) == expected


@pytest.mark.parametrize(
    ("flag", "code_only"),
    [
        ("-fomit-frame-pointer", True),
        ("-flto", True),
        ("-fstack-protector-strong", True),
        ("-D_FORTIFY_SOURCE=3", True),
        ("-ftree-vectorize", True),
        ("-fPIC", True),
        ("-ffast-math", False),
        ("-fwrapv", False),
        ("-m32", False),
        ("-mavx2", False),
        ("-D_FILE_OFFSET_BITS=64", False),
        ("-fexotic-new-flag", False),
        ("-funsigned-char", False),
    ],
)
def test_code_only_classification(flag: str, code_only: bool) -> None:
    assert is_code_only(flag) is code_only
