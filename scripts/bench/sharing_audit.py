"""An independent check of one (builder, host) pair against the real compilers.

Used by ``scripts/bench/sharing.py`` to count unsafe sharings: it does not go
through the predicate or the descriptor, only through what the build's own
compiler says about the raw flags and what a compiled layout probe shows.
A pair is unsafe when the build may use a CPU feature the host lacks, lays
out or passes data differently (sizes, alignments, char signedness, calling
convention macros), relaxes floating-point results the host did not relax,
drops a semantic option the host asked for, is less hardened, or needs a
runtime library the host's own flags do not.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ipfsbin.descriptor import CompilerProbe, Hardening, chost_family, runtime_needs
from ipfsbin.descriptor.isa import features_from_macros
from ipfsbin.descriptor.toolchain import CompilerRefused

# What the layout probe prints: each value becomes a global the assembly shows.
_LAYOUT_C = r"""
#include <stddef.h>
enum e { E1 };
struct cd { char c; double d; };
struct cll { char c; long long l; };
struct cld { char c; long double d; };
struct cs { char c; short s; };
struct bits { unsigned a : 3; unsigned b : 30; };
#define V(name, value) const long long name = (long long)(value);
V(v_char_signed, (char)-1 < 0)
V(v_short, sizeof(short)) V(v_int, sizeof(int)) V(v_long, sizeof(long))
V(v_llong, sizeof(long long)) V(v_ptr, sizeof(void *)) V(v_ldouble, sizeof(long double))
V(v_wchar, sizeof(__WCHAR_TYPE__)) V(v_wchar_signed, (__WCHAR_TYPE__)-1 < 0)
V(v_enum, sizeof(enum e))
V(v_cd, sizeof(struct cd)) V(v_cd_off, offsetof(struct cd, d))
V(v_cll, sizeof(struct cll)) V(v_cld, sizeof(struct cld)) V(v_cs, sizeof(struct cs))
V(v_bits, sizeof(struct bits)) V(v_align_ld, _Alignof(long double))
V(v_align_max, _Alignof(max_align_t))
"""
_VALUE = re.compile(r"^(v_\w+):\s*$")
_DATA = re.compile(r"^\s*\.(?:quad|long|word|4byte|8byte|xword|dword)\s+(-?\w+)")
# Predefined macros that state an ABI (calling convention, data model, long double format).
# Not __BIGGEST_ALIGNMENT__: it follows the ISA (-mavx raises it to 32) like on
# every -march build mixed with generic ones; the psABI's max_align_t, which
# the layout probe reads, stays 16.
_ABI_MACROS = re.compile(
    r"^(__SIZEOF_\w+__|__CHAR_UNSIGNED__|__WCHAR_UNSIGNED__|_CALL_ELF|_CALL_SYSV|_CALL_AIX\w*|"
    r"__LONG_DOUBLE_\w+|__ILP32__|_ILP32|__LP64__|_LP64|__BYTE_ORDER__|__FLT_EVAL_METHOD__|"
    r"__STRUCT_PARM_ALIGN__|__gnu_linux__|__linux__|__unix__|"
    r"__USER_LABEL_PREFIX__|__REGISTER_PREFIX__|__ALTIVEC_ABI__|__SOFTFP__|__NO_FPRS__)$"
)
# Option states (GCC's -Q --help=target) that choose an ABI. Not -mabi=: GCC
# reports those as given, not as in effect (ELFv2 is "[disabled]" on ppc64le,
# whose only ABI it is); the macros (_CALL_ELF, __LONG_DOUBLE_*) say what is.
# Not -mfloat128: VSX makes __float128 available, as AVX-512 BF16 makes __bf16.
_ABI_OPTIONS = re.compile(
    r"^(-mcall-ABI|-m64|-m32|-mx32|-mlong-double-\d+|-malign-double|-mregparm=|-mfloat-abi=)$"
)
# Sizes of types an instruction set makes available (__float128 with VSX on POWER,
# __bf16 with AVX-512 BF16): code built without them does not use them; their
# presence is the ISA's business (features), not a changed layout.
_TYPE_AVAILABLE = frozenset(
    {"__SIZEOF_FLOAT128__", "__SIZEOF_IEEE128__", "__SIZEOF_IBM128__", "__SIZEOF_FLOAT80__"}
)
# FLT_EVAL_METHOD 16 is 0 plus _Float16 evaluated as itself (AArch64 with FP16
# arithmetic): float_t and double_t are the same types.
_EVAL_METHOD = {"16": "0"}
# Macros a floating-point relaxation defines; and those a stricter mode defines.
_RELAXED_MACROS = (
    "__FAST_MATH__",
    "__NO_MATH_ERRNO__",
    "__RECIPROCAL_MATH__",
    "__ASSOCIATIVE_MATH__",
    "__NO_SIGNED_ZEROS__",
    "__NO_TRAPPING_MATH__",
)
_STRICT_MACROS = ("__ROUNDING_MATH__", "__SUPPORT_SNAN__")
# Options whose state changes what some programs compute; a host that asks for
# a state other than its -O level's default must get it.
_SEMANTIC_OPTIONS = (
    "-fstrict-aliasing",
    "-fwrapv",
    "-fwrapv-pointer",
    "-fstrict-overflow",
    "-fdelete-null-pointer-checks",
    "-fexceptions",
    "-fsigned-char",
    "-fshort-enums",
    "-fpack-struct",
    "-fcommon",
    "-mfix-cortex-a53-835769",
    "-mfix-cortex-a53-843419",
    "-mfpmath",
    "-mregparm",
    "-malign-double",
    "-mlong-double-64",
    "-mlong-double-80",
    "-mlong-double-128",
)


@dataclass(frozen=True, kw_only=True)
class BuildFacts:
    """What the real compiler says about one line's flags."""

    chost: str
    family: str
    features: frozenset[str]
    abi: tuple[tuple[str, str], ...]
    relaxed: frozenset[str]
    strict: frozenset[str]
    iec_559: int
    options: dict[str, str]
    requested: dict[str, str]
    """Semantic option states that differ from the default at the line's -O level."""
    hardening: Hardening
    runtime: frozenset[str]


# Words that only change diagnostics or the compiler's own output (-v and
# -fverbose-asm would make the help and assembly unreadable).
_QUIET = re.compile(
    r"^(-pipe|--pipe|-v|-Q\w*|-g\S*|-fverbose-asm|-ftime-report|-save-temps\S*|-W(?![alp],)\S*)$"
)


def _words(flags: str) -> tuple[str, ...]:
    words: list[str] = []
    parts = [p for p in flags.split() if not _QUIET.match(p)]
    index = 0
    while index < len(parts):
        if parts[index] == "-mllvm" and index + 1 < len(parts):
            words.append(f"-mllvm {parts[index + 1]}")
            index += 2
            continue
        words.append(parts[index])
        index += 1
    return tuple(words)


def _opt_word(words: tuple[str, ...]) -> str:
    found = "-O0"
    for word in words:
        if re.fullmatch(r"-O(\d+|s|z|g|fast)?", word):
            found = word
    return found


def _layout(command: tuple[str, ...], words: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    argv = [*command, *(a for w in words for a in w.split(" ", 1))]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "layout.c"
        source.write_text(_LAYOUT_C)
        done = subprocess.run(  # noqa: S603 - the build's compiler, its flags as arguments
            # -fno-lto: with LTO, -S writes GIMPLE bytecode instead of assembly.
            [*argv, "-fno-lto", "-S", "-o", "-", str(source)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    values: list[tuple[str, str]] = []
    name: str | None = None
    for line in done.stdout.splitlines():
        label = _VALUE.match(line)
        if label is not None:
            name = label.group(1)
            continue
        data = _DATA.match(line)
        if data is not None and name is not None:
            values.append((name, data.group(1)))
            name = None
    return tuple(sorted(values))


def _named(word: str, quoted: set[str]) -> bool:
    """Whether a compiler message quoting ``quoted`` is about ``word`` (``-flto=`` and ``full``)."""
    return word in quoted or any(q.startswith("-") and word.startswith(q) for q in quoted)


def build_facts(probe: CompilerProbe, chost: str, flags: str, family: str) -> BuildFacts:
    """Ask the real compiler for ``chost`` about ``flags`` (raises if it refuses them)."""
    words = _words(flags)
    while True:
        try:
            answer = probe.ask(chost, words, family=family)
            break
        except CompilerRefused as exc:
            # An option of the other language or compiler (-stdlib=libc++ to GCC's C
            # driver): the build's compiler ignores it for C; ask without it.
            quoted = set(re.findall(r"[‘'`]([^’'`]+)[’'`]", exc.message))
            kept = tuple(w for w in words if not _named(w, quoted))
            if kept == words:
                raise
            words = kept
    baseline = probe.ask(chost, (), family=family)
    default = probe.ask(chost, (_opt_word(words),), family=family)
    command = probe.command(chost, family=family)
    if command is None:
        raise RuntimeError(f"no compiler for {chost}")
    macros = answer.macros
    abi = tuple(
        sorted(
            (k, _EVAL_METHOD.get(v, v) if k == "__FLT_EVAL_METHOD__" else v)
            for k, v in macros.items()
            if _ABI_MACROS.match(k) and k not in _TYPE_AVAILABLE
        )
    )
    abi += tuple(sorted((k, v) for k, v in answer.options.items() if _ABI_OPTIONS.match(k)))
    # The C++ standard library is a C++ ABI; GCC's C driver does not know the option.
    stdlib = [w for w in _words(flags) if w.startswith("-stdlib=")]
    abi += (("-stdlib=", stdlib[-1] if stdlib else "default"),)
    requested = {
        name: answer.options.get(name, "")
        for name in _SEMANTIC_OPTIONS
        if answer.options.get(name, "") != default.options.get(name, "")
    }
    return BuildFacts(
        chost=chost,
        family=family,
        features=features_from_macros(chost_family(chost), macros, baseline.macros),
        abi=abi + _layout(command, words),
        relaxed=frozenset(m for m in _RELAXED_MACROS if m in macros)
        | ({"__FINITE_MATH_ONLY__"} if macros.get("__FINITE_MATH_ONLY__") == "1" else set()),
        strict=frozenset(m for m in _STRICT_MACROS if m in macros),
        iec_559=int(macros.get("__GCC_IEC_559", "0") or 0),
        options={name: answer.options.get(name, "") for name in _SEMANTIC_OPTIONS},
        requested=requested,
        hardening=Hardening.from_answer(answer),
        runtime=frozenset(runtime_needs(flags, flags, "")),
    )


def unsafe_reasons(build: BuildFacts, host: BuildFacts, host_cpu: frozenset[str]) -> list[str]:
    """Why installing ``build`` on ``host`` (whose CPU has ``host_cpu``) is unsafe; [] if safe."""
    found: list[str] = []
    if build.chost != host.chost or build.family != host.family:
        found.append("different CHOST or compiler")
        return found
    if not build.features <= host_cpu:
        found.append(f"features {sorted(build.features - host_cpu)}")
    if build.abi != host.abi:
        differ = sorted(set(build.abi) ^ set(host.abi))
        found.append(f"ABI {differ[:4]}")
    if not build.relaxed <= host.relaxed or not host.strict <= build.strict:
        found.append(f"math {sorted(build.relaxed - host.relaxed)} {sorted(host.strict)}")
    if build.iec_559 < host.iec_559:
        found.append("IEC 559 conformance")
    for name, state in host.requested.items():
        if build.options.get(name, "") != state:
            found.append(f"{name} {build.options.get(name)!r}, host asks {state!r}")
    if build.hardening.shortfalls(host.hardening):
        found.append("less hardened")
    if not build.runtime <= host.runtime:
        found.append(f"runtime {sorted(build.runtime - host.runtime)}")
    return found
