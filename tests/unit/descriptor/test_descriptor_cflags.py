"""Flag normalization with the real GCCs: schema/descriptor.md, section 3."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import archspec.cpu
import pytest

from ipfsbin.descriptor import (
    CompilerProbe,
    host_cpu_features,
    is_code_only,
    normalize_cflags,
    normalize_ldflags,
    runtime_needs,
)
from ipfsbin.errors import DescriptorError

AMD64 = "x86_64-pc-linux-gnu"
I686 = "i686-pc-linux-gnu"
ARM64 = "aarch64-unknown-linux-gnu"
PPC64LE = "powerpc64le-unknown-linux-gnu"
PPC = "powerpc-unknown-linux-gnu"

# (chost, CFLAGS, expected -O level, expected kept flags)
KEPT = [
    (AMD64, "-O2 -O3", "3", ()),
    (AMD64, "-O3 -O2", "2", ()),
    (AMD64, "", "0", ()),
    (AMD64, "-O", "1", ()),
    (AMD64, "-O9", "3", ()),
    (AMD64, "-Ofast", "fast", ()),
    (AMD64, "-Os -pipe --pipe", "s", ()),
    (AMD64, "-fomit-frame-pointer -fno-omit-frame-pointer -O2", "2", ("-fno-omit-frame-pointer",)),
    (AMD64, "-fno-omit-frame-pointer -fomit-frame-pointer -O2", "2", ("-fomit-frame-pointer",)),
    (AMD64, "-O2 -g -ggdb3 -g0 -gsplit-dwarf -gdwarf-5 -fvar-tracking-assignments", "2", ()),
    (AMD64, "-O2 -Wall -Werror=format-security -Wno-error -w", "2", ()),
    (AMD64, "-O2 -fdiagnostics-color=always -frecord-gcc-switches -fmessage-length=0", "2", ()),
    (AMD64, "-O2 -flto=4", "2", ("-flto",)),
    (AMD64, "-flto=auto -O2", "2", ("-flto",)),
    (AMD64, "-flto -fno-lto -O2", "2", ("-fno-lto",)),
    (AMD64, "-m32 -m64", "0", ("-m64",)),
    (AMD64, "-mavx2 -mno-avx2 -mfpmath=sse", "0", ("-mfpmath=sse",)),
    (AMD64, "-U_GLIBCXX_ASSERTIONS -D_FORTIFY_SOURCE=3", "0", ("-U_GLIBCXX_ASSERTIONS",)),
    (AMD64, "-fexotic-new-flag -fexotic-new-flag", "0", ("-fexotic-new-flag",)),
    (AMD64, "-O2 --param l1-cache-size=32 --param=l2-cache-size=512", "2", ()),
    (AMD64, "-O2 -ftree-parallelize-loops=4", "2", ("-ftree-parallelize-loops=4",)),
    (AMD64, "-O2 -fstack-protector-strong -fPIC -ffast-math", "2", ()),
]


@pytest.mark.parametrize(("chost", "cflags", "opt", "flags"), KEPT)
def test_opt_level_and_kept_flags(
    chost: str, cflags: str, opt: str, flags: tuple[str, ...]
) -> None:
    profile = normalize_cflags(cflags, chost=chost)
    assert (profile.opt, profile.flags) == (opt, flags)


# Spellings of one build: one profile (the compiler makes the same code of them).
SAME_BUILD = [
    (AMD64, "-O2 -pipe -march=haswell -fno-plt -flto", "-flto -fno-plt -march=haswell -pipe -O2"),
    (AMD64, "-march=haswell -mtune=haswell", "-march=haswell"),
    (AMD64, "-march=core-avx2", "-march=haswell"),
    (AMD64, "-march=k8", "-march=opteron"),
    (AMD64, "-march=athlon64", "-march=k8"),
    (AMD64, "-march=atom", "-march=bonnell"),
    (AMD64, "-march=slm", "-march=silvermont"),
    (AMD64, "-O2 --pipe", "-O2 -pipe"),
    (AMD64, "-march=x86-64-v3 -mtune=generic", "-march=x86-64-v3"),
    # resolve-march-native: -m flags -march implies, cache sizes, the default -mtune.
    (
        AMD64,
        "-march=skylake -mabm -madx -maes -mavx -mavx2 -mbmi -mbmi2 -mclflushopt -mcx16 -mf16c "
        "-mfma -mfsgsbase -mfxsr -mlzcnt -mmmx -mmovbe -mpclmul -mpopcnt -mprfchw -mrdrnd "
        "-mrdseed -msahf -msse -msse2 -msse3 -msse4.1 -msse4.2 -mssse3 -mxsave -mxsavec "
        "-mxsaveopt -mxsaves --param=l1-cache-line-size=64 --param=l1-cache-size=32 "
        "--param=l2-cache-size=8192 -mtune=skylake -O2",
        "-march=skylake -O2",
    ),
    # A real one (tests/data/makeconf, GregWills97/Configuration-Files).
    (
        AMD64,
        "-march=znver3 -O2 -pipe -mtune=znver3 -mabm -madx -maes -mavx -mavx2 -mbmi -mbmi2 "
        "-mclflushopt -mclwb -mclzero -mcx16 -mf16c -mfma -mfsgsbase -mfxsr -mlzcnt -mmmx "
        "-mmovbe -mmwaitx -mpclmul -mpku -mpopcnt -mprfchw -mrdpid -mrdrnd -mrdseed -msahf "
        "-msha -mshstk -msse -msse2 -msse3 -msse4.1 -msse4.2 -msse4a -mssse3 -mvaes "
        "-mvpclmulqdq -mwbnoinvd -mxsave -mxsavec -mxsaveopt -mxsaves "
        "--param=l1-cache-line-size=64 --param=l1-cache-size=32 --param=l2-cache-size=512",
        "-march=znver3 -O2",
    ),
    (ARM64, "-march=armv8-a+crc+crypto", "-march=armv8-a+crypto+crc"),
    (ARM64, "-O2 -march=armv8-a+crc+crypto -mtune=cortex-a72", "-O2 -mcpu=cortex-a72+crypto"),
    (AMD64, "-O2 -fsanitize=address,undefined", "-O2 -fsanitize=undefined -fsanitize=address"),
    (
        AMD64,
        "-O2 -fsanitize=address -fno-sanitize=all -fsanitize=undefined",
        "-O2 -fsanitize=undefined",
    ),
    (AMD64, "-O2 -fno-sanitize=address", "-O2"),
    (AMD64, "-O2 -D FOO=1", "-O2 -DFOO=1"),
    (AMD64, "-O2 -DFOO=1 -D FOO=2", "-O2 -DFOO=2"),
    (AMD64, "-O2 -fstack-protector-all -fstack-protector-strong", "-O2 -fstack-protector-strong"),
]


@pytest.mark.parametrize(("chost", "a", "b"), SAME_BUILD)
def test_spellings_of_one_build_get_one_profile(chost: str, a: str, b: str) -> None:
    assert normalize_cflags(a, chost=chost) == normalize_cflags(b, chost=chost)


# Builds that differ must not share a profile. The first four are the issue's
# unsafe cases 1 and 2: the old normalizer gave each pair one profile.
DIFFERENT_BUILDS = [
    (ARM64, "-O2 -march=armv8.2-a -mcpu=cortex-a72", "-O2 -mcpu=cortex-a72"),
    (AMD64, "-O2 -mno-avx -mavx2", "-O2 -mavx2 -mno-avx"),
    (AMD64, "-O2 -ffast-math -fno-finite-math-only", "-O2 -fno-finite-math-only -ffast-math"),
    (AMD64, "-O2 -march=ivybridge -mno-avx -mno-aes -mno-rdrnd", "-O2 -march=ivybridge"),
    (AMD64, "-O2 -fsanitize=address -fsanitize=undefined", "-O2 -fsanitize=undefined"),
    (AMD64, "-O2 -D A -U B", "-O2 -D B -U A"),
    (AMD64, "-O2 -include a.h -I b", "-O2 -include b -I a.h"),
    (AMD64, "-O2 -fstack-protector-all", "-O2 -fno-stack-protector"),
]


@pytest.mark.parametrize(("chost", "a", "b"), DIFFERENT_BUILDS)
def test_different_builds_get_different_profiles(chost: str, a: str, b: str) -> None:
    assert normalize_cflags(a, chost=chost) != normalize_cflags(b, chost=chost)


def test_arm_isa_comes_from_march_when_mcpu_is_given_too() -> None:
    """GCC takes the instruction set from -march; -mcpu then only tunes (unsafe case 1)."""
    both = normalize_cflags("-march=armv8.2-a -mcpu=cortex-a72", chost=ARM64)
    alone = normalize_cflags("-mcpu=cortex-a72", chost=ARM64)
    assert "atomics" in both.features and "atomics" not in alone.features
    assert both.tune == "cortex-a72"


def test_isa_options_apply_left_to_right() -> None:
    """-mno-avx -mavx2 yields AVX2 code; -mavx2 -mno-avx none (unsafe case 2)."""
    on = normalize_cflags("-mno-avx -mavx2", chost=AMD64)
    off = normalize_cflags("-mavx2 -mno-avx", chost=AMD64)
    assert {"avx", "avx2"} <= set(on.features)
    assert not {"avx", "avx2"} & set(off.features)


def test_math_options_apply_left_to_right() -> None:
    later = normalize_cflags("-O2 -ffast-math -fno-finite-math-only", chost=AMD64)
    earlier = normalize_cflags("-O2 -fno-finite-math-only -ffast-math", chost=AMD64)
    assert "-ffinite-math-only" not in later.math
    assert "-ffinite-math-only" in earlier.math
    assert normalize_cflags("-O2", chost=AMD64).math == ()


def test_march_features_include_what_gcc_adds_beyond_archspec() -> None:
    assert {"adx", "rdrand", "sha_ni"} <= set(
        normalize_cflags("-march=znver1", chost=AMD64).features
    )
    assert "xsave" in normalize_cflags("-march=sandybridge", chost=AMD64).features


def test_pentium_line_lacks_what_it_switches_off() -> None:
    features = set(
        normalize_cflags("-march=ivybridge -mno-avx -mno-aes -mno-rdrnd", chost=AMD64).features
    )
    assert not {"avx", "aes", "rdrand", "f16c"} & features
    assert {"sse4_2", "popcnt", "pclmulqdq"} <= features


@pytest.mark.parametrize(
    ("chost", "cflags", "wanted"),
    [
        (ARM64, "-march=armv8-a+crc+crypto", {"crc32", "aes", "pmull", "sha1", "sha2"}),
        (ARM64, "-mcpu=cortex-a76+crc+crypto", {"atomics", "asimddp", "aes", "crc32"}),
        (ARM64, "-mcpu=cortex-a53", {"fp", "asimd", "crc32"}),
        (PPC64LE, "-mcpu=power9", {"arch_3_00", "vsx", "altivec"}),
        (PPC, "-mcpu=G4", {"altivec"}),
        (I686, "-march=athlon-xp", {"3dnow", "3dnowext", "sse", "mmx"}),
    ],
)
def test_features_per_architecture(chost: str, cflags: str, wanted: set[str]) -> None:
    assert wanted <= set(normalize_cflags(cflags, chost=chost).features)


def test_native_is_resolved_by_the_builders_compiler() -> None:
    here = str(archspec.cpu.host().name)
    if archspec.cpu.host().family.name != "x86_64":
        pytest.skip("the test CHOST is x86_64")
    profile = normalize_cflags("-march=native -O2", chost=AMD64, host_target=here)
    assert set(profile.features) <= host_cpu_features()
    assert profile.opt == "2"


def test_hardening_is_read_from_the_compiler() -> None:
    profile = normalize_cflags(
        "-O2 -fstack-protector-all -D_FORTIFY_SOURCE=3 -fstack-clash-protection "
        "-fcf-protection=full -ftrivial-auto-var-init=zero",
        chost=AMD64,
    )
    h = profile.hardening
    assert (h.stack_protector, h.fortify, h.stack_clash, h.cf_protection, h.auto_var_init) == (
        "all",
        3,
        True,
        ("branch", "return"),
        "zero",
    )
    weak = normalize_cflags("-O2 -fno-stack-protector -U_FORTIFY_SOURCE", chost=AMD64).hardening
    assert (weak.stack_protector, weak.fortify) == ("none", 0)
    # _FORTIFY_SOURCE does nothing without optimization.
    assert normalize_cflags("-O0 -D_FORTIFY_SOURCE=2", chost=AMD64).hardening.fortify == 0


# (chost, CFLAGS, host_target, fragment of the message, fragment of the hint, not in the hint)
REFUSED = [
    (
        AMD64,
        "-fsanitize=undefined -fno-sanitize=alignment",
        None,
        "both enable (undefined) and disable (alignment) -fsanitize= values",
        "",
        "",
    ),
    (AMD64, "-march=pentium9 -O2", None, "-march=pentium9 is refused", "x86-64-v3", "cortex"),
    (AMD64, "-march=power9", None, "-march=power9 is refused", "x86-64", "power"),
    (ARM64, "-mcpu=cortex-a99 -O2", None, "-mcpu=cortex-a99 is refused", "cortex-a72", "haswell"),
    (ARM64, "-march=haswell", None, "-march=haswell is refused", "armv8", "znver"),
    (PPC64LE, "-O2 -march=power9", None, "-march=power9", "-mcpu=power8", "haswell"),
    (PPC, "-mcpu=pentium4", None, "-mcpu=pentium4 is refused", "G4", "haswell"),
    (AMD64, "-march=native", None, "-march=native", "builder", ""),
    (AMD64, "-mtune=native", None, "-mtune=native", "builder", ""),
    (AMD64, "-march=native", "pentium99", "this machine is", "", ""),
    (AMD64, "-Ohigh", None, "unknown optimization level -Ohigh", "-O2", ""),
    ("armv7a-unknown-linux-gnueabihf", "-O2", None, "not one ipfsbin describes", "", ""),
]


@pytest.mark.parametrize(
    ("chost", "cflags", "host_target", "fragment", "hint", "not_hint"), REFUSED
)
def test_refused_flags_name_the_users_flag(
    chost: str, cflags: str, host_target: str | None, fragment: str, hint: str, not_hint: str
) -> None:
    with pytest.raises(DescriptorError) as info:
        normalize_cflags(cflags, chost=chost, host_target=host_target)
    assert fragment in info.value.message
    assert hint in (info.value.hint or "")
    if not_hint:
        assert not_hint not in (info.value.hint or "")


def test_cxxflags_errors_say_cxxflags() -> None:
    with pytest.raises(DescriptorError, match="^CXXFLAGS: -march=pentium9"):
        normalize_cflags("-march=pentium9", chost=AMD64, variable="CXXFLAGS")


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
    ("texts", "needs"),
    [
        (("-O2 -ftree-parallelize-loops=4",), ("libgomp.so.1",)),
        (("-O2 -ftree-parallelize-loops=1",), ()),
        (("-O2 -floop-parallelize-all",), ("libgomp.so.1",)),
        (("-O2 -fopenmp -fno-openmp",), ()),
        (
            ("-O2", "-O2", "-fuse-ld=lld -rtlib=compiler-rt -unwindlib=libunwind"),
            ("libunwind.so.1",),
        ),
        (("-O2", "-stdlib=libc++", ""), ("libc++.so.1", "libc++abi.so.1")),
        (("-unwindlib=libunwind -unwindlib=libgcc",), ()),
    ],
)
def test_runtime_needs(texts: tuple[str, ...], needs: tuple[str, ...]) -> None:
    assert runtime_needs(*texts) == needs


@pytest.mark.parametrize(
    ("flag", "code_only"),
    [
        ("-fomit-frame-pointer", True),
        ("-flto", True),
        ("-ftree-vectorize", True),
        ("-floop-interchange", True),
        ("-ftree-parallelize-loops=4", False),
        ("-floop-parallelize-all", False),
        ("-ffast-math", False),
        ("-fwrapv", False),
        ("-m32", False),
        ("-D_FILE_OFFSET_BITS=64", False),
        ("-fexotic-new-flag", False),
        ("-funsigned-char", False),
    ],
)
def test_code_only_classification(flag: str, code_only: bool) -> None:
    """Unsafe case 3: the parallelizing flags start threads through libgomp."""
    assert is_code_only(flag) is code_only


def test_builder_without_the_chosts_compiler_refuses_to_share(tmp_path: Path) -> None:
    probe = CompilerProbe(search_path=str(tmp_path))
    with pytest.raises(DescriptorError, match="no GCC for CHOST aarch64-unknown-linux-gnu") as info:
        normalize_cflags("-O2 -mcpu=cortex-a72", chost=ARM64, probe=probe)
    assert "aarch64-unknown-linux-gnu-gcc" in (info.value.hint or "")


def test_the_chosts_own_gcc_is_preferred(tmp_path: Path) -> None:
    """Gentoo names its compilers CHOST-gcc; a Debian cross compiler stands in otherwise."""
    cross = shutil.which("aarch64-linux-gnu-gcc")
    assert cross is not None
    (tmp_path / "aarch64-unknown-linux-gnu-gcc").symlink_to(cross)
    probe = CompilerProbe(search_path=str(tmp_path))
    answer = probe.ask(ARM64, ("-mcpu=cortex-a72",))
    assert answer.compiler == "aarch64-unknown-linux-gnu-gcc"
    assert not probe.is_native(ARM64) or platform.machine() == "aarch64"


def test_a_clang_build_is_asked_of_clang() -> None:
    """Clang's neoverse-n1 enables the crypto extensions GCC's leaves out."""
    clang = normalize_cflags("-O2 -mcpu=neoverse-n1", chost=ARM64, compiler="clang")
    gcc = normalize_cflags("-O2 -mcpu=neoverse-n1", chost=ARM64)
    assert {"aes", "sha2"} <= set(clang.features)
    assert not {"aes", "sha2"} & set(gcc.features)
    assert clang.tune == "neoverse-n1"


def test_clang_takes_the_arm_isa_from_march_too() -> None:
    both = normalize_cflags("-march=armv8.2-a -mcpu=cortex-a72", chost=ARM64, compiler="clang")
    assert "atomics" in both.features


def test_clang_states_come_from_the_flags_weakest_by_default() -> None:
    plain = normalize_cflags("-O2", chost=AMD64, compiler="clang")
    assert (plain.hardening.stack_clash, plain.hardening.auto_var_init) == (False, "uninitialized")
    hardened = normalize_cflags(
        "-O2 -fstack-clash-protection -ftrivial-auto-var-init=pattern",
        chost=AMD64,
        compiler="clang",
    )
    assert (hardened.hardening.stack_clash, hardened.hardening.auto_var_init) == (True, "pattern")
    later = normalize_cflags("-O2 -ffast-math -fno-finite-math-only", chost=AMD64, compiler="clang")
    earlier = normalize_cflags(
        "-O2 -fno-finite-math-only -ffast-math", chost=AMD64, compiler="clang"
    )
    assert later.math == ("-ffast-math -fno-finite-math-only",)
    assert later != earlier
    assert plain.math == ()
