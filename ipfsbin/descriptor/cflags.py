"""Flags as words: what is dropped, grouped, code-only, or a runtime need (schema 3).

Words the compiler is asked about (schema/descriptor.md, section 3.2) are
picked out here; :mod:`ipfsbin.descriptor.profile` asks. The other kept
flags form groups in which the last one wins; the survivors are sorted, since
flags of different groups do not override each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipfsbin.descriptor.model import OPT_LEVELS
from ipfsbin.errors import DescriptorError

__all__ = [
    "CODE_ONLY_FLAGS",
    "CONSERVATIVE_FLAGS",
    "OPTIMIZATION_FLAGS",
    "OPTIONAL_FLAGS",
    "Words",
    "is_code_only",
    "normalize_ldflags",
    "runtime_needs",
    "split_cflags",
]

_DROPPED_EXACT = frozenset(
    {
        "-pipe",
        "--pipe",
        "-w",
        "-v",
        "-Q",
        "-frecord-gcc-switches",
        "-fno-record-gcc-switches",
        "-fverbose-asm",
        "-ftime-report",
        "-fcolor-diagnostics",
        "-fno-color-diagnostics",
        "-fansi-escape-codes",
        "-feliminate-unused-debug-types",
        "-fno-eliminate-unused-debug-types",
    }
)
_DROPPED_PREFIXES = (
    "-fdiagnostics-",
    "-fno-diagnostics-",
    "-fmessage-length=",
    "-fmax-errors=",
    "-fvar-tracking",
    "-fno-var-tracking",
    "-fdebug-prefix-map=",
    "-save-temps",
    # Cache sizes (resolve-march-native writes them) tune like -mtune does.
    "--param=l1-cache-size=",
    "--param=l1-cache-line-size=",
    "--param=l2-cache-size=",
)

_CODE_ONLY_EXACT = frozenset(
    {
        "-fomit-frame-pointer",
        "-fno-omit-frame-pointer",
        "-momit-leaf-frame-pointer",
        "-mno-omit-leaf-frame-pointer",
        "-flto",
        "-fno-lto",
        "-ffat-lto-objects",
        "-fno-fat-lto-objects",
        "-fuse-linker-plugin",
        "-fplt",
        "-fno-plt",
        "-D_GLIBCXX_ASSERTIONS",
        "-fsemantic-interposition",
        "-fno-semantic-interposition",
        "-fpeel-loops",
        "-fprefetch-loop-arrays",
        "-fno-ident",
        # Clang's diagnostics switch: it changes no code at all.
        "-Qunused-arguments",
    }
)
_CODE_ONLY_PREFIXES = (
    "-flto-partition=",
    "-fgraphite",
    "-floop-",
    "-ftree-",
    "-fno-tree-",
    "-fipa-",
    "-fno-ipa-",
    "-funroll-",
    "-fno-unroll-",
    "-falign-",
    "-finline",
    "-fno-inline",
    "-fsched",
    "-fvect-cost-model=",
    "-fzero-call-used-regs=",
)
CODE_ONLY_FLAGS: tuple[str, ...] = tuple(sorted(_CODE_ONLY_EXACT)) + _CODE_ONLY_PREFIXES
"""Flags (exact, or prefixes ending in ``-``, ``=`` or a stem) the predicate ignores."""
OPTIMIZATION_FLAGS: frozenset[str] = frozenset(
    {
        "-fdevirtualize-at-ltrans",
        "-fforce-addr",
        "-fno-force-addr",
        "-frename-registers",
        "-fno-rename-registers",
        "-fweb",
        "-fno-web",
        "-fgcse-sm",
        "-fgcse-las",
        "-fgcse-after-reload",
        "-fmodulo-sched",
        "-fmodulo-sched-allow-regmoves",
        "-fvariable-expansion-in-unroller",
        "-fpredictive-commoning",
        "-fsplit-loops",
        "-fsplit-paths",
        "-mavx256-split-unaligned-load",
        "-mno-avx256-split-unaligned-load",
        "-mavx256-split-unaligned-store",
        "-mno-avx256-split-unaligned-store",
    }
)
"""Optimization choices that change the code but neither the ABI nor what a correct
program computes, and that the predicate has always compared: a difference is
a preference (schema/descriptor.md, section 5.1), not ignored like CODE_ONLY_FLAGS."""
CONSERVATIVE_FLAGS: frozenset[str] = frozenset(
    {
        "-fno-strict-aliasing",
        "-fwrapv",
        "-fno-strict-overflow",
        "-fno-delete-null-pointer-checks",
        "-mfix-cortex-a53-835769",
        "-mfix-cortex-a53-843419",
    }
)
"""Flags that take an assumption away from the optimizer (or work around a CPU
erratum): a build with one runs correctly on a host without it (a preference),
a host that asks for one must not get a build without it (safety)."""
OPTIONAL_FLAGS: frozenset[str] = frozenset({"-fopenmp", "-fopenmp-simd"})
"""Flags that let programs use more of the machine (threads, SIMD pragmas): a
build without one runs correctly on a host that has it (a preference); a build
with one is safety-checked (its runtime needs, its changed semantics)."""
# Under the code-only prefixes, but the program then starts threads through libgomp.
_PARALLEL_PREFIXES = ("-ftree-parallelize-loops=", "-floop-parallelize-all")

_OPT_RE = re.compile(r"^-O(\d+|s|z|g|fast)?$")
_WORD_SIZE = frozenset({"-m16", "-m32", "-mx32", "-m64"})

# Options whose argument may be the next word. -D/-U/-I and --param are
# rewritten to their one-word form (same meaning to the compiler), the others
# are kept as "option argument": sorting the words apart would let
# "-D A -U B" and "-D B -U A" give one profile.
_ATTACHED_ARGUMENT = {"-D": "-D", "-U": "-U", "-I": "-I", "--param": "--param="}
_SEPARATE_ARGUMENT = frozenset(
    {
        "-include",
        "-imacros",
        "-isystem",
        "-idirafter",
        "-iquote",
        "-Xlinker",
        "-Xassembler",
        "-Xpreprocessor",
        "-mllvm",
    }
)
# -fsanitize=a,b and friends add to (or take from) a set instead of replacing
# the previous value, so "last one wins" would lose sanitizers.
_SANITIZE_FAMILIES = ("sanitize", "sanitize-recover", "sanitize-trap")
# Options that may be given several times, each adding something: every one is kept.
_ACCUMULATING_PREFIXES = (
    "-fplugin=",
    "-fplugin-arg-",
    "-ffile-prefix-map=",
    "-fmacro-prefix-map=",
    "-fprofile-prefix-map=",
    "-finstrument-functions-exclude-",
)


def _is_dropped(flag: str) -> bool:
    if flag in _DROPPED_EXACT or flag.startswith(_DROPPED_PREFIXES):
        return True
    if flag.startswith("-W") and not flag.startswith(("-Wl,", "-Wa,", "-Wp,")):
        return True
    return flag.startswith("-g")


def _words(text: str) -> list[str]:
    """The flags of ``text``, an option and its separate argument joined into one."""
    words = text.split()
    joined: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        has_argument = index + 1 < len(words)
        if word in _ATTACHED_ARGUMENT and has_argument:
            joined.append(_ATTACHED_ARGUMENT[word] + words[index + 1])
            index += 2
        elif word in _SEPARATE_ARGUMENT and has_argument:
            joined.append(f"{word} {words[index + 1]}")
            index += 2
        else:
            joined.append(word)
            index += 1
    return joined


def _sanitize_family(flag: str) -> tuple[str, bool, list[str]] | None:
    """(family, enables, values) for ``-f[no-]sanitize[-recover|-trap]=a,b``, else None."""
    if not flag.startswith("-f") or "=" not in flag:
        return None
    option, _, values = flag[2:].partition("=")
    enables = not option.startswith("no-")
    option = option.removeprefix("no-")
    if option not in _SANITIZE_FAMILIES:
        return None
    return option, enables, [v for v in values.split(",") if v]


def _sanitize_flags(states: dict[str, dict[str, bool]]) -> list[str]:
    """The kept ``-fsanitize…=VALUE`` flags, one per value still enabled."""
    kept: list[str] = []
    for option, values in states.items():
        enabled = sorted(v for v, on in values.items() if on)
        disabled = sorted(v for v, on in values.items() if not on)
        if enabled and disabled:
            # Sanitizer groups overlap (undefined holds alignment), so whether
            # -fno-sanitize=alignment wins depends on an order the profile drops.
            raise DescriptorError(
                f"the flags both enable ({','.join(enabled)}) and disable "
                f"({','.join(disabled)}) -f{option}= values; the result depends on their "
                "order, which is not recorded",
                hint=f"list only the -f{option}= values that stay enabled",
            )
        kept.extend(f"-f{option}={value}" for value in enabled)
    return kept


def _group(flag: str) -> tuple[str, str]:
    """(group key, flag as kept) for a flag outside the -O/-march/-mtune groups."""
    if flag.startswith(_ACCUMULATING_PREFIXES) or " " in flag:
        return "=" + flag, flag
    if flag.startswith("--param="):
        return "param:" + flag[len("--param=") :].split("=", 1)[0], flag
    if flag in ("-flto", "-fno-lto") or flag.startswith("-flto="):
        return "f:lto", "-fno-lto" if flag == "-fno-lto" else "-flto"
    if flag in _WORD_SIZE:
        return "m:word-size", flag
    for prefix, kind in (("-f", "f"), ("-m", "m")):
        if flag.startswith(prefix) and len(flag) > 2:
            name = flag[2:].split("=", 1)[0]
            name = name.removeprefix("no-")
            return f"{kind}:{name}", flag
    if flag.startswith(("-D", "-U")) and len(flag) > 2:
        return "D:" + flag[2:].split("=", 1)[0], flag
    return "=" + flag, flag


@dataclass(frozen=True, kw_only=True)
class Words:
    """CFLAGS split for normalization."""

    opt: str
    """-O level without ``-O``."""
    asked: tuple[str, ...]
    """The words the compiler is asked about, in the user's order."""
    kept: tuple[str, ...]
    """Every other kept flag, grouped and sorted."""


# Options that only switch instruction-set extensions: their meaning is the
# feature set the compiler reports, so they are not kept as flags as well.
_ISA_OPTIONS = frozenset(
    """
    mmx sse sse2 sse3 ssse3 sse4 sse4a sse4.1 sse4.2 avx avx2 avx512f avx512pf avx512er
    avx512cd avx512vl avx512bw avx512dq avx512ifma avx512vbmi avx512vbmi2 avx512bf16
    avx512fp16 avx512bitalg avx512vpopcntdq avx512vp2intersect avx5124fmaps avx512vnni
    avx5124vnniw avxvnni avxifma avxvnniint8 avxvnniint16 avxneconvert sha aes pclmul
    clflushopt clwb fsgsbase ptwrite rdrnd f16c fma fma4 pconfig wbnoinvd prfchw rdpid
    prefetchwt1 rdseed sgx xop lwp 3dnow 3dnowa popcnt abm adx bmi bmi2 lzcnt fxsr xsave
    xsaveopt xsavec xsaves rtm hle tbm mwaitx clzero pku gfni vaes vpclmulqdq waitpkg
    movdiri movdir64b enqcmd uintr tsxldtrk cldemote serialize amx-tile amx-int8 amx-bf16
    amx-fp16 hreset kl widekl cmpccxadd sm3 sm4 sha512 crc32 cx16 sahf movbe shstk
    altivec vsx crypto power8-vector power9-vector mma htm float128-hardware popcntb
    popcntd fprnd cmpb mfcrf hard-dfp direct-move quad-memory quad-memory-atomic
    """.split()
)
# Floating-point options: their effect is read back from the compiler (``math``).
_MATH_OPTIONS = frozenset(
    """
    fast-math unsafe-math-optimizations associative-math reciprocal-math finite-math-only
    math-errno signed-zeros trapping-math rounding-math signaling-nans cx-limited-range
    cx-fortran-rules excess-precision fp-contract single-precision-constant
    """.split()
)
# Hardening options: read back as the Hardening record.
_HARDENING_OPTIONS = frozenset(
    """
    stack-protector stack-protector-strong stack-protector-all stack-protector-explicit
    stack-clash-protection cf-protection trivial-auto-var-init pie PIE pic PIC
    """.split()
)
_HARDENING_M = ("-mbranch-protection=",)
_FORTIFY = re.compile(r"^-([DU])_FORTIFY_SOURCE(=.*)?$")


def _option_name(flag: str) -> str:
    """``-fno-fast-math`` -> ``fast-math``; ``-mno-avx2`` -> ``avx2``; ``-fx=1`` -> ``x``."""
    return flag[2:].split("=", 1)[0].removeprefix("no-")


def is_math_option(flag: str) -> bool:
    """True for a floating-point option (``-ffast-math``, ``-fno-math-errno``, ...)."""
    return flag.startswith("-f") and _option_name(flag) in _MATH_OPTIONS


def _is_asked(flag: str) -> tuple[bool, bool]:
    """(asked, also kept as a flag) for one word."""
    if flag.startswith("-m"):
        if flag.startswith(("-march=", "-mcpu=", "-mtune=")) or flag.startswith(_HARDENING_M):
            return True, False
        return True, _option_name(flag) not in _ISA_OPTIONS
    if flag.startswith("-f") and _option_name(flag) in (_MATH_OPTIONS | _HARDENING_OPTIONS):
        return True, False
    return bool(_FORTIFY.match(flag)), False


def split_cflags(text: str) -> Words:
    """Split CFLAGS into the -O level, the words to ask the compiler, and kept flags."""
    opt = "0"
    asked: list[str] = []
    groups: dict[str, str] = {}
    sanitize: dict[str, dict[str, bool]] = {}
    for flag in _words(text):
        match = _OPT_RE.match(flag)
        if match is not None:
            level = match.group(1) or "1"
            opt = str(min(int(level), 3)) if level.isdigit() else level
            asked.append(flag)
            continue
        if flag.startswith("-O"):
            raise DescriptorError(
                f"unknown optimization level {flag}",
                hint=f"use one of {', '.join('-O' + o for o in OPT_LEVELS)}",
            )
        if _is_dropped(flag):
            continue
        is_asked, also_kept = _is_asked(flag)
        if is_asked:
            asked.append(flag)
            if not also_kept:
                continue
        if (found := _sanitize_family(flag)) is not None:
            family_name, enables, values = found
            states = sanitize.setdefault(family_name, {})
            for value in values:
                if value == "all" and not enables:
                    states.clear()  # off with nothing on is no flag at all
                else:
                    states[value] = enables
        else:
            key, kept = _group(flag)
            groups[key] = kept
    kept_flags = set(groups.values()) | set(_sanitize_flags(sanitize))
    return Words(opt=opt, asked=tuple(asked), kept=tuple(sorted(kept_flags)))


def is_code_only(flag: str) -> bool:
    """True when ``flag`` changes code but neither the ABI nor what programs compute."""
    if flag.startswith(_PARALLEL_PREFIXES):
        return False
    return flag in _CODE_ONLY_EXACT or flag.startswith(_CODE_ONLY_PREFIXES)


# Linker options that take their argument as the next comma-separated item.
_LD_WITH_ARGUMENT = frozenset({"-z", "-rpath", "-soname", "-rpath-link", "-m"})
_LD_DROPPED_PREFIXES = ("-O", "--hash-style=", "--build-id")


def _ld_group(option: tuple[str, ...]) -> str | None:
    """Group key of one linker option, or None to drop it."""
    head = option[0]
    if head.startswith(_LD_DROPPED_PREFIXES):
        return None
    if head == "-z" and len(option) == 2:
        value = option[1]
        if value in ("now", "lazy"):
            return "z:binding"
        return "z:" + value.removeprefix("no")
    if head.startswith("--"):
        name = head[2:].split("=", 1)[0]
        return "ld:" + name.removeprefix("no-")
    return "ld=" + ",".join(option)


def _linker_options(items: list[str]) -> list[tuple[str, ...]]:
    options: list[tuple[str, ...]] = []
    index = 0
    while index < len(items):
        item = items[index]
        if item in _LD_WITH_ARGUMENT and index + 1 < len(items):
            options.append((item, items[index + 1]))
            index += 2
            continue
        if item.startswith("-z") and len(item) > 2:
            options.append(("-z", item[2:]))
        elif item:
            options.append((item,))
        index += 1
    return options


def normalize_ldflags(text: str) -> tuple[str, ...]:
    """Normalize LDFLAGS: linker options one by one, the last of a group wins, sorted."""
    groups: dict[str, str] = {}
    for flag in text.split():
        if flag.startswith("-Wl,"):
            for option in _linker_options(flag[4:].split(",")):
                key = _ld_group(option)
                if key is not None:
                    groups[key] = "-Wl," + ",".join(option)
        elif _OPT_RE.match(flag):
            groups["O"] = flag
        elif not _is_dropped(flag):
            key, kept = _group(flag)
            groups[key] = kept
    return tuple(sorted(set(groups.values())))


# Toolchain runtimes some flags make every program need (section 3.7).
_GOMP = ("libgomp.so.1",)
_RUNTIME_BY_CHOICE: dict[str, tuple[str, ...]] = {
    "-unwindlib=libunwind": ("libunwind.so.1",),
    "-stdlib=libc++": ("libc++.so.1", "libc++abi.so.1"),
}


def runtime_needs(*texts: str) -> tuple[str, ...]:
    """Sonames the flags (CFLAGS, CXXFLAGS, LDFLAGS) make programs need, sorted.

    Each text is read left to right (the last of a group wins); their needs add up.
    """
    needs: set[str] = set()
    for text in texts:
        state: dict[str, str] = {}
        for flag in text.split():
            name = flag.split("=", 1)[0]
            if name in ("-unwindlib", "-stdlib", "-ftree-parallelize-loops"):
                state[name] = flag
            elif flag in ("-fopenmp", "-fno-openmp", "-fopenacc", "-fno-openacc"):
                state[flag.replace("-fno-", "-f")] = flag
            elif flag in ("-floop-parallelize-all", "-fno-loop-parallelize-all"):
                state["-floop-parallelize-all"] = flag
        for flag in state.values():
            needs.update(_RUNTIME_BY_CHOICE.get(flag, ()))
            if flag in ("-fopenmp", "-fopenacc", "-floop-parallelize-all"):
                needs.update(_GOMP)
            elif flag.startswith("-ftree-parallelize-loops="):
                threads = flag.split("=", 1)[1]
                if not (threads.isdigit() and int(threads) <= 1):
                    needs.update(_GOMP)
    return tuple(sorted(needs))
