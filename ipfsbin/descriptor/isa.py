"""Instruction-set features: from the compiler's macros, from USE, from the host CPU.

Feature names are archspec's (which follow the kernel's ``/proc/cpuinfo``
names): ``avx2``, ``sse4_2``, ``pclmulqdq``, ``asimd``, ``atomics``, ...
(schema/descriptor.md, section 3.3).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import archspec.cpu

from ipfsbin.errors import DescriptorError

__all__ = [
    "PRIVILEGED_ONLY",
    "cpu_flag_features",
    "features_from_macros",
    "host_cpu_features",
    "isa_label",
    "power_generation_features",
    "sysfs_features",
]

# GCC's predefined macro -> the features the code may then use.
_X86_MACROS: dict[str, tuple[str, ...]] = {
    "__MMX__": ("mmx",),
    "__3dNOW__": ("3dnow",),
    "__3dNOW_A__": ("3dnowext",),
    "__SSE__": ("sse",),
    "__SSE2__": ("sse2",),
    "__SSE3__": ("sse3",),
    "__SSSE3__": ("ssse3",),
    "__SSE4_1__": ("sse4_1",),
    "__SSE4_2__": ("sse4_2",),
    "__CRC32__": ("sse4_2",),
    "__SSE4A__": ("sse4a",),
    "__POPCNT__": ("popcnt",),
    "__LZCNT__": ("abm",),
    "__ABM__": ("abm",),
    "__AES__": ("aes",),
    "__PCLMUL__": ("pclmulqdq",),
    "__AVX__": ("avx",),
    "__AVX2__": ("avx2",),
    "__F16C__": ("f16c",),
    "__FMA__": ("fma",),
    "__FMA4__": ("fma4",),
    "__XOP__": ("xop",),
    "__TBM__": ("tbm",),
    "__LWP__": ("lwp",),
    "__BMI__": ("bmi1",),
    "__BMI2__": ("bmi2",),
    "__MOVBE__": ("movbe",),
    "__RDRND__": ("rdrand",),
    "__RDSEED__": ("rdseed",),
    "__ADX__": ("adx",),
    "__SHA__": ("sha_ni",),
    "__FXSR__": ("fxsr",),
    "__XSAVE__": ("xsave",),
    "__XSAVEOPT__": ("xsaveopt",),
    "__XSAVEC__": ("xsavec",),
    "__XSAVES__": ("xsaves",),
    "__FSGSBASE__": ("fsgsbase",),
    "__CLFLUSHOPT__": ("clflushopt",),
    "__CLWB__": ("clwb",),
    "__CLZERO__": ("clzero",),
    "__MWAITX__": ("mwaitx",),
    "__PRFCHW__": ("3dnowprefetch",),
    "__LAHF_SAHF__": ("lahf_lm",),
    "__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16": ("cx16",),
    "__PKU__": ("pku",),
    "__RDPID__": ("rdpid",),
    "__VAES__": ("vaes",),
    "__VPCLMULQDQ__": ("vpclmulqdq",),
    "__GFNI__": ("gfni",),
    "__SGX__": ("sgx",),
    "__PTWRITE__": ("ptwrite",),
    "__WBNOINVD__": ("wbnoinvd",),
    "__PCONFIG__": ("pconfig",),
    "__RTM__": ("rtm",),
    "__MOVDIRI__": ("movdiri",),
    "__MOVDIR64B__": ("movdir64b",),
    "__WAITPKG__": ("waitpkg",),
    "__CLDEMOTE__": ("cldemote",),
    "__SERIALIZE__": ("serialize",),
    "__TSXLDTRK__": ("tsxldtrk",),
    "__ENQCMD__": ("enqcmd",),
    "__UINTR__": ("uintr",),
    "__HRESET__": ("hreset",),
    "__KL__": ("keylocker",),
    "__WIDEKL__": ("keylocker_wide",),
    "__AVX512F__": ("avx512f",),
    "__AVX512CD__": ("avx512cd",),
    "__AVX512DQ__": ("avx512dq",),
    "__AVX512BW__": ("avx512bw",),
    "__AVX512VL__": ("avx512vl",),
    "__AVX512ER__": ("avx512er",),
    "__AVX512PF__": ("avx512pf",),
    "__AVX5124FMAPS__": ("avx512_4fmaps",),
    "__AVX5124VNNIW__": ("avx512_4vnniw",),
    "__AVX512IFMA__": ("avx512ifma",),
    "__AVX512VBMI__": ("avx512vbmi",),
    "__AVX512VBMI2__": ("avx512_vbmi2",),
    "__AVX512VNNI__": ("avx512_vnni",),
    "__AVX512BITALG__": ("avx512_bitalg",),
    "__AVX512VPOPCNTDQ__": ("avx512_vpopcntdq",),
    "__AVX512BF16__": ("avx512_bf16",),
    "__AVX512FP16__": ("avx512_fp16",),
    "__AVX512VP2INTERSECT__": ("avx512_vp2intersect",),
    "__AVXVNNI__": ("avx_vnni",),
    "__AVXIFMA__": ("avx_ifma",),
    "__AVXNECONVERT__": ("avx_ne_convert",),
    "__AVXVNNIINT8__": ("avx_vnni_int8",),
    "__AVXVNNIINT16__": ("avx_vnni_int16",),
    "__CMPCCXADD__": ("cmpccxadd",),
    "__INVPCID__": ("invpcid",),
    "__AMXTILE__": ("amx_tile",),
    "__AMXINT8__": ("amx_int8",),
    "__AMXBF16__": ("amx_bf16",),
    "__AMX_TILE__": ("amx_tile",),
    "__AMX_INT8__": ("amx_int8",),
    "__AMX_BF16__": ("amx_bf16",),
    "__AMX_FP16__": ("amx_fp16",),
    "__PREFETCHWT1__": ("prefetchwt1",),
    "__SHA512__": ("sha512",),
    "__SM3__": ("sm3",),
    "__SM4__": ("sm4",),
}
_AARCH64_MACROS: dict[str, tuple[str, ...]] = {
    "__ARM_FP": ("fp",),
    "__ARM_NEON": ("asimd",),
    "__ARM_FEATURE_CRC32": ("crc32",),
    "__ARM_FEATURE_ATOMICS": ("atomics",),
    "__ARM_FEATURE_AES": ("aes", "pmull"),
    "__ARM_FEATURE_SHA2": ("sha1", "sha2"),
    "__ARM_FEATURE_CRYPTO": ("aes", "pmull", "sha1", "sha2"),
    "__ARM_FEATURE_SHA3": ("sha3",),
    "__ARM_FEATURE_SHA512": ("sha512",),
    "__ARM_FEATURE_SM3": ("sm3",),
    "__ARM_FEATURE_SM4": ("sm4",),
    "__ARM_FEATURE_QRDMX": ("asimdrdm",),
    "__ARM_FEATURE_DOTPROD": ("asimddp",),
    "__ARM_FEATURE_FP16_SCALAR_ARITHMETIC": ("fphp",),
    "__ARM_FEATURE_FP16_VECTOR_ARITHMETIC": ("asimdhp",),
    "__ARM_FEATURE_FP16_FML": ("asimdfhm",),
    "__ARM_FEATURE_COMPLEX": ("fcma",),
    "__ARM_FEATURE_JCVT": ("jscvt",),
    "__ARM_FEATURE_FRINT": ("frint",),
    "__ARM_FEATURE_RCPC": ("lrcpc",),
    "__ARM_FEATURE_PAUTH": ("paca", "pacg"),
    "__ARM_FEATURE_BTI": ("bti",),
    "__ARM_FEATURE_MATMUL_INT8": ("i8mm",),
    "__ARM_FEATURE_BF16": ("bf16",),
    "__ARM_FEATURE_BF16_SCALAR_ARITHMETIC": ("bf16",),
    "__ARM_FEATURE_BF16_VECTOR_ARITHMETIC": ("bf16",),
    "__ARM_FEATURE_SVE": ("sve",),
    "__ARM_FEATURE_SVE2": ("sve2",),
    "__ARM_FEATURE_SVE2_AES": ("sveaes",),
    "__ARM_FEATURE_SVE2_BITPERM": ("svebitperm",),
    "__ARM_FEATURE_SVE2_SHA3": ("svesha3",),
    "__ARM_FEATURE_SVE2_SM4": ("svesm4",),
    "__ARM_FEATURE_SVE_MATMUL_INT8": ("svei8mm",),
    "__ARM_FEATURE_SVE_MATMUL_FP32": ("svef32mm",),
    "__ARM_FEATURE_SVE_MATMUL_FP64": ("svef64mm",),
    "__ARM_FEATURE_SVE_BF16": ("svebf16",),
    "__ARM_FEATURE_MEMORY_TAGGING": ("mte",),
    "__ARM_FEATURE_RNG": ("rng",),
    "__ARM_FEATURE_TME": ("tme",),
    "__ARM_FEATURE_LS64": ("ls64",),
    "__ARM_FEATURE_SME": ("sme",),
    "__ARM_FEATURE_SME2": ("sme2",),
}
# POWER: the kernel's AT_HWCAP/AT_HWCAP2 names, one per ISA level.
_POWER_MACROS: dict[str, tuple[str, ...]] = {
    "_ARCH_PPCGR": ("ppcgr",),
    "_ARCH_PPCSQ": ("ppcsq",),
    "__ALTIVEC__": ("altivec",),
    "_ARCH_PWR4": ("power4",),
    "_ARCH_PWR5": ("power5",),
    "_ARCH_PWR5X": ("power5+",),
    "_ARCH_PWR6": ("arch_2_05",),
    "_ARCH_PWR7": ("arch_2_06",),
    "__VSX__": ("vsx",),
    "_ARCH_PWR8": ("arch_2_07",),
    "__POWER8_VECTOR__": ("arch_2_07",),
    "__CRYPTO__": ("vcrypto",),
    "_ARCH_PWR9": ("arch_3_00",),
    "__POWER9_VECTOR__": ("arch_3_00",),
    "__FLOAT128_HARDWARE__": ("ieee128",),
    "_ARCH_PWR10": ("arch_3_1",),
    "__MMA__": ("mma",),
    "__POWER10_VECTOR__": ("arch_3_1",),
    "__PCREL__": ("arch_3_1",),
    "__QUAD_MEMORY__": ("arch_2_07",),
    "__QUAD_MEMORY_ATOMIC__": ("arch_2_07",),
    "__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16": ("arch_2_07",),
    "__PPU__": ("cellbe",),
}
# In 32-bit mode LAHF/SAHF and CMPXCHG8B always exist; the kernel's lahf_lm
# and cx16 flags are about 64-bit mode, so 32-bit code needs neither.
_X86_32_MACROS = {**_X86_MACROS, "__LAHF_SAHF__": (), "__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16": ()}
_MACROS: dict[str, dict[str, tuple[str, ...]]] = {
    "x86_64": _X86_MACROS,
    "x86": _X86_32_MACROS,
    "aarch64": _AARCH64_MACROS,
    "ppc64le": _POWER_MACROS,
    "ppc64": _POWER_MACROS,
    "ppc": _POWER_MACROS,
}
# Macros that look like an ISA announcement but are not one. Any other macro
# of that look which a table above lacks makes the flags refused: a newer
# compiler's new extension must not pass unnoticed.
_NOT_ISA = re.compile(
    r"^(__OPTIMIZE(_SIZE)?__|__NO_INLINE__|__SSP(_ALL|_STRONG|_EXPLICIT)?__|__CET__|"
    r"__PIC__|__PIE__|__SHSTK__|__CLANG_\w+__|__NO_MATH_INLINES|__FAST_MATH__|__FINITE_MATH_ONLY__|__NO_MATH_ERRNO__|"
    r"__NO_SIGNED_ZEROS__|__NO_TRAPPING_MATH__|__ASSOCIATIVE_MATH__|__RECIPROCAL_MATH__|"
    r"__ROUNDING_MATH__|__SUPPORT_SNAN__|__GCC_IEC_559(_COMPLEX)?|__FLT_EVAL_METHOD\w*|"
    r"__FP_FAST_FMA\w*|__BIGGEST_ALIGNMENT__|__MMX_WITH_SSE__|__SSE_MATH__|__SSE2_MATH__|"
    r"__SEG_FS|__SEG_GS|__code_model_\w+__|__HTM__|__VEC__|__RECIP\w*__|__RSQRTE\w*__|__TM_FENCE__|__NO_LWSYNC__|__APPLE_ALTIVEC__|__ARM_\w+_DEFAULT|"
    r"__ARM_ARCH\w*|__ARM_FEATURE_(IDIV|CLZ|FMA|UNALIGNED|NUMERIC_MAXMIN|DIRECTED_ROUNDING)|"
    r"__ARM_FP16_\w+|__ARM_NEON_FP|__ARM_ALIGN_MAX\w*|_ARCH_PPC(64)?|__ARM_SIZEOF_\w+|"
    r"__ARM_PCS\w*|__ARM_NEON_SVE_BRIDGE|__ARM_BF16_FORMAT_ALTERNATIVE|_ARCH_\d+|__KC__|__KF__|__TC__|__TF__|__IC__|__IF__|__ARM_FEATURE_SVE_BITS|__ARM_FEATURE_SVE_VECTOR_OPERATORS|__ARM_64BIT_STATE|__ARM_FEATURE_FP16_\w*_FORMAT)$"
)
_ISA_LOOKING = re.compile(r"^(__[A-Z0-9_]+__|__ARM_\w+|_ARCH_\w+|__GCC_HAVE_SYNC_\w+)$")
# Data-type and layout macros (float formats, sizes), never an extension.
_DATA_TYPE = re.compile(
    r"^__(FLT|DBL|LDBL|DEC|BFLT|SIZEOF|INT|UINT|SIG_ATOMIC|WCHAR|WINT|SCHAR|SHRT|LONG|"
    r"PTRDIFF|SIZE|CHAR|FLOAT128|IEEE128|LONG_DOUBLE|HAVE_SPECULATION_SAFE)"
)


def features_from_macros(
    family: str, macros: Mapping[str, str], baseline: Mapping[str, str]
) -> frozenset[str]:
    """The features GCC's macros announce; refuse macros that look like an unknown one.

    ``baseline`` holds the macros of the family's plain compile (no flags):
    macros present there too are part of every build and need no table entry.
    """
    table = _MACROS[family]
    found: set[str] = set()
    unknown: list[str] = []
    for name, value in macros.items():
        if name in table:
            if value.strip() != "0":
                found.update(table[name])
        elif (
            name not in baseline
            and _ISA_LOOKING.match(name)
            and not _NOT_ISA.match(name)
            and not _DATA_TYPE.match(name)
        ):
            unknown.append(name)
    if unknown:
        raise DescriptorError(
            f"the compiler announces {', '.join(sorted(unknown))}, an instruction-set "
            "extension ipfsbin does not know, so it cannot tell which CPUs run the code",
            hint="packages built with these flags are not shared until ipfsbin learns it; "
            "drop the -m flag that enables it",
        )
    return frozenset(found)


def _same(names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names.split()}


# Portage's CPU_FLAGS_* values (profiles/desc/cpu_flags_*.desc) -> features.
_CPU_FLAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "x86": {
        **_same(
            "3dnow 3dnowext aes avx avx2 avx512f avx512bw avx512cd avx512dq avx512er "
            "avx512ifma avx512pf avx512vbmi avx512vl avx512_4fmaps avx512_4vnniw avx512_bf16 "
            "avx512_bitalg avx512_fp16 avx512_vbmi2 avx512_vnni avx512_vp2intersect "
            "avx512_vpopcntdq avx_vnni f16c fma4 gfni mmx popcnt rdrand sse sse2 sse3 sse4_1 "
            "sse4_2 sse4a ssse3 vaes vpclmulqdq xop"
        ),
        "fma3": ("fma",),
        "pclmul": ("pclmulqdq",),
        "sha": ("sha_ni",),
        # The MMX extensions are part of SSE; Intel CPUs do not list mmxext.
        "mmxext": ("sse",),
    },
    # ipfsbin describes AArch64 only: the 32-bit ARM levels and modes (v4..v8,
    # thumb, edsp) need nothing of 64-bit code, NEON is ASIMD, VFP is FP.
    "arm": {
        **_same("aes crc32 sha1 sha2 sha3 sm4 sve i8mm bf16 asimddp"),
        **{name: () for name in "edsp thumb thumb2 v4 v5 v6 v7 v8".split()},
        **{name: ("fp",) for name in "vfp vfp-d32 vfpv3 vfpv4".split()},
        "neon": ("asimd",),
    },
    "ppc": {
        "altivec": ("altivec",),
        "vsx": ("vsx",),
        "vsx2": ("arch_2_07",),
        "vsx3": ("arch_3_00",),
    },
}


_CPU_FLAG: Final = re.compile(r"^cpu_flags_(x86|arm|ppc)_(.+)$")


def cpu_flag_features(use: Iterable[str]) -> dict[str, frozenset[str]]:
    """USE flag -> the CPU features it says the code uses, for every ``cpu_flags_*`` flag.

    An unknown ``cpu_flags_*`` value raises: its meaning cannot be checked.
    """
    found: dict[str, frozenset[str]] = {}
    for flag in use:
        if not flag.startswith("cpu_flags_"):
            continue  # most flags: not worth a pattern match (once per build judged)
        match = _CPU_FLAG.match(flag)
        if match is None:
            continue
        features = _CPU_FLAGS[match.group(1)].get(match.group(2))
        if features is None:
            raise DescriptorError(
                f"USE flag {flag} names a CPU feature ipfsbin does not know",
                hint="the package is not shared: which CPUs run it cannot be told",
            )
        found[flag] = frozenset(features)
    return found


# Feature names the kernel spells differently from archspec.
_ALIASES = {"pni": "sse3", "sha": "sha_ni", "lzcnt": "abm"}


def power_generation_features(generation: int) -> frozenset[str]:
    """The features of a POWER<generation> CPU (64-bit; what archspec detects)."""
    levels = (
        (4, ("ppcgr", "ppcsq", "power4")),
        (5, ("power5", "power5+")),
        (6, ("arch_2_05", "altivec")),
        (7, ("arch_2_06", "vsx")),
        (8, ("arch_2_07", "vcrypto")),
        (9, ("arch_3_00", "ieee128")),
        (10, ("arch_3_1", "mma")),
    )
    return frozenset(f for level, names in levels if generation >= level for f in names)


PRIVILEGED_ONLY: Final = frozenset({"hreset", "pconfig", "wbnoinvd"})
"""x86 features whose every instruction faults outside ring 0 whatever the CPU
(HRESET, PCONFIG, WBNOINVD: #GP if CPL > 0). GCC announces them for recent
-march values, but no package's user-space code can depend on them, so the
predicate does not ask the host's CPU for them (schema/descriptor.md, 5)."""
# Features the kernel's /proc/cpuinfo does not list, read where the kernel
# exposes them elsewhere: PTWRITE (a no-op unless Intel PT traces, #UD only
# when CPUID lacks it) in the Intel PT driver's capabilities.
_SYSFS_FEATURES: Final = {"ptwrite": "bus/event_source/devices/intel_pt/caps/ptwrite"}


def sysfs_features(root: Path = Path("/sys")) -> frozenset[str]:
    """Features the kernel reports under ``root`` (sysfs) but not in /proc/cpuinfo."""
    found = set()
    for name, relative in _SYSFS_FEATURES.items():
        try:
            if (root / relative).read_text().strip() == "1":
                found.add(name)
        except OSError:
            continue
    return frozenset(found)


@functools.cache
def host_cpu_features() -> frozenset[str]:
    """This machine's CPU features (its own, read by archspec and sysfs; not a label's)."""
    from archspec.cpu import detect

    info = detect.detected_info()
    machine = detect._machine()  # noqa: SLF001 - archspec's own family detection
    if machine in ("ppc64le", "ppc64"):
        return power_generation_features(int(info.generation or 0))
    if machine != "x86_64":
        return frozenset(_ALIASES.get(f, f) for f in info.features)
    return (
        frozenset(_ALIASES.get(f, f) for f in info.features)
        | frozenset({"mmx", "sse", "sse2", "fxsr"})
        | sysfs_features()
    )


def target_cpu_features(name: str) -> frozenset[str]:
    """The CPU features of archspec's microarchitecture ``name`` (``/proc/cpuinfo`` names).

    For a host told to act as another CPU (the client's ``target`` setting):
    the label's features stand in for the CPU's own.
    """
    target = archspec.cpu.TARGETS.get(name)
    if target is None:
        raise DescriptorError(
            f"unknown microarchitecture {name!r}",
            hint="use a name archspec knows (python -c 'import archspec.cpu; "
            "print(sorted(archspec.cpu.TARGETS))')",
        )
    family = target.family.name
    if family.startswith("ppc"):
        return power_generation_features(int(target.generation or 0))
    return frozenset(_ALIASES.get(f, f) for f in target.features) | (
        frozenset({"mmx", "sse", "sse2", "fxsr"}) if family == "x86_64" else frozenset()
    )


def _visible(family: str) -> frozenset[str]:
    return frozenset(f for names in _MACROS[family].values() for f in names)


def isa_label(family: str, features: frozenset[str]) -> str:
    """The archspec target of ``family`` that best matches ``features`` (for messages);
    ``family`` itself when nothing more specific fits.

    A target qualifies when the build has each of its features that GCC can
    announce (``cpuid``, ``evtstrm`` are never announced); the one with the
    most such features wins. POWER targets are compared by generation.
    """
    visible = _visible(family)
    best: tuple[int, int, str] | None = None
    for target in archspec.cpu.TARGETS.values():
        if target.family.name != family:
            continue
        # archspec's AArch64 cores differ by features GCC does not announce
        # (cpuid, evtstrm): matching by feature names one core after another,
        # an ARM user would read a foreign core's name.
        if family == "aarch64" and target.vendor != "generic":
            continue
        if family.startswith("ppc"):
            wanted = power_generation_features(target.generation) & visible
        else:
            wanted = frozenset(target.features) & visible
        if wanted <= features:
            key = (len(wanted), -len(target.ancestors), target.name)
            if best is None or key > best:
                best = key
    return best[2] if best is not None else family
