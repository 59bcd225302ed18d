"""CFLAGS to an OptProfile, asking the builder's compiler (schema/descriptor.md, section 3).

The instruction-set features, floating-point semantics and hardening of a
build are what the compiler makes of the flags, applied left to right; the
compiler is asked rather than imitated.
"""

from __future__ import annotations

import re

from ipfsbin.descriptor.cflags import is_math_option, split_cflags
from ipfsbin.descriptor.hardening import Hardening
from ipfsbin.descriptor.isa import features_from_macros
from ipfsbin.descriptor.model import OptProfile
from ipfsbin.descriptor.toolchain import (
    CompilerAnswer,
    CompilerRefused,
    Probe,
    chost_family,
    default_probe,
)
from ipfsbin.errors import DescriptorError

__all__ = ["arch_hint", "normalize_cflags"]

# Floating-point options as -Q --help=common names them; recorded when they
# differ from the compiler's default at the same -O level.
_MATH_STATES = (
    "-fassociative-math",
    "-fcx-fortran-rules",
    "-fcx-limited-range",
    "-fexcess-precision",
    "-ffinite-math-only",
    "-ffp-contract",
    "-fmath-errno",
    "-freciprocal-math",
    "-frounding-math",
    "-fsignaling-nans",
    "-fsigned-zeros",
    "-fsingle-precision-constant",
    "-ftrapping-math",
)

_HINTS = {
    "x86_64": "use an x86-64 -march this compiler knows (x86-64-v2, x86-64-v3, haswell, "
    "znver3, ...), or -march=native on the builder",
    "x86": "use a 32-bit x86 -march this compiler knows (i686, pentium4, prescott, "
    "athlon-xp, ...), or -march=native on the builder",
    "aarch64": "use -march=armv8-a (or armv8.2-a, ...) with +extensions such as "
    "+crc+crypto, or -mcpu= with a core this compiler knows (cortex-a53, cortex-a72, "
    "cortex-a76, neoverse-n1, ...)",
    "ppc64le": "POWER has no -march: use -mcpu=power8, power9 or power10",
    "ppc64": "POWER has no -march: use -mcpu=power7, power8, power9, 970, ...",
    "ppc": "32-bit PowerPC has no -march: use -mcpu= with a CPU this compiler knows "
    "(G4, 7450, 970, e500mc, ...)",
}


# GCC's other names for one CPU: tuning for either is the same.
_TUNE_ALIASES = {
    "core-avx2": "haswell",
    "corei7": "nehalem",
    "corei7-avx": "sandybridge",
    "core-avx-i": "ivybridge",
    "opteron": "k8",
    "athlon64": "k8",
    "athlon-fx": "k8",
    "opteron-sse3": "k8-sse3",
    "athlon64-sse3": "k8-sse3",
    "amdfam10": "barcelona",
    "atom": "bonnell",
    "slm": "silvermont",
    "G4": "7450",
    "G5": "970",
}


def arch_hint(family: str) -> str:
    """What a user of ``family`` can write instead (an architecture's own names)."""
    return _HINTS.get(family, "use -march/-mcpu names the builder's GCC knows")


def _quoted(message: str) -> list[str]:
    return re.findall(r"[‘'`]([^’'`]+)[’'`]", message)


def _culprit(message: str, asked: tuple[str, ...]) -> str | None:
    """The user's own word that GCC's ``message`` is about."""
    quoted = _quoted(message)
    for word in reversed(asked):
        if word in quoted:
            return word
    # "bad value 'znver4' for '-march=' switch": the option and value are quoted apart.
    for word in reversed(asked):
        option, sep, value = word.partition("=")
        if sep and value and any(value.startswith(q) or q.startswith(value) for q in quoted):
            return word
    # "'-m64' requires a PowerPC64 cpu": the CPU choice is what conflicts.
    for word in reversed(asked):
        if word.startswith(("-march=", "-mcpu=")):
            return word
    return None


def _ask(
    probe: Probe, chost: str, words: tuple[str, ...], variable: str, compiler: str
) -> CompilerAnswer:
    family = chost_family(chost)
    name = "Clang" if compiler == "clang" else "GCC"
    try:
        return probe.ask(chost, words, family=compiler)
    except CompilerRefused as exc:
        culprit = _culprit(exc.message, words)
        what = culprit if culprit is not None else " ".join(words)
        if culprit is None or culprit.startswith(("-march=", "-mcpu=", "-mtune=")):
            hint = arch_hint(family)
        else:
            # Not a CPU choice: an option of another compiler (clang's -mllvm) or version.
            hint = (
                f"ipfsbin asks {name} for {chost} what the flags mean, and it does not know "
                f"{culprit}; packages built with it are not shared"
            )
        raise DescriptorError(
            f"{variable}: {what} is refused by the builder's {name} for {chost}: {exc.message}",
            hint=hint,
        ) from exc


def _math(answer: CompilerAnswer, default: CompilerAnswer) -> tuple[str, ...]:
    found: list[str] = []
    for name in _MATH_STATES:
        state = answer.options.get(name, "")
        if state == default.options.get(name, ""):
            continue
        if state == "[enabled]":
            found.append(name)
        elif state == "[disabled]":
            found.append("-fno-" + name[2:])
        elif state:
            found.append(f"{name}={state}")
    return tuple(sorted(found))


def _as_written(words: tuple[str, ...]) -> tuple[str, ...]:
    """Clang's floating-point options, in their order, as one entry (Clang cannot say
    what they add up to, so only identical spellings share a key)."""
    math = [w for w in words if w.startswith("-f") and is_math_option(w)]
    return (" ".join(math),) if math else ()


def _check_native(
    words: tuple[str, ...],
    variable: str,
    chost: str,
    host_target: str | None,
    probe: Probe,
    compiler: str,
) -> None:
    native = [w for w in words if w.endswith("=native")]
    if not native:
        return
    if host_target is None or not probe.is_native(chost, family=compiler):
        raise DescriptorError(
            f"{variable} use {native[0]}, which only the builder's own compiler can resolve",
            hint="normalize on the builder itself (ipfsbin publish does), or replace "
            f"{native[0]} with the CPU name it stands for",
        )
    import archspec.cpu

    if archspec.cpu.host().name != host_target:
        raise DescriptorError(
            f"{variable} use {native[0]} and the builder is said to be {host_target}, "
            f"but this machine is {archspec.cpu.host().name}",
            hint="normalize -march=native builds on the machine that built them",
        )


def normalize_cflags(
    text: str,
    *,
    chost: str,
    host_target: str | None = None,
    probe: Probe | None = None,
    variable: str = "CFLAGS",
    compiler: str = "gcc",
) -> OptProfile:
    """Normalize CFLAGS or CXXFLAGS for ``chost`` with the builder's compiler (``probe``).

    ``compiler`` is the build's compiler family (``gcc`` or ``clang``): the
    flags mean what that compiler makes of them. ``host_target`` (archspec's
    name for this machine) says the flags are normalized on the builder
    itself, which lets ``native`` be resolved by the compiler. ``variable``
    names the flags in messages.
    """
    probe = probe if probe is not None else default_probe()
    family = chost_family(chost)
    words = split_cflags(text)
    _check_native(words.asked, variable, chost, host_target, probe, compiler)
    answer = _ask(probe, chost, words.asked, variable, compiler)
    baseline = probe.ask(chost, (), family=compiler)
    default = probe.ask(chost, (f"-O{words.opt}",), family=compiler)
    try:
        features = features_from_macros(family, answer.macros, baseline.macros)
    except DescriptorError as exc:
        flags = " ".join(words.asked)
        raise DescriptorError(f"{variable} {flags}: {exc.message}", hint=exc.hint) from exc
    tune = answer.options.get("-mtune=", "").strip() or None
    tune = _TUNE_ALIASES.get(tune, tune) if tune is not None else None
    return OptProfile(
        features=tuple(sorted(features)),
        tune=tune,
        opt=words.opt,
        math=_math(answer, default) if compiler == "gcc" else _as_written(words.asked),
        hardening=Hardening.from_answer(answer),
        flags=words.kept,
    )
