"""A build's -O level, floating-point semantics and kept flags against the host's own.

Each difference is a safety mismatch when it can change what a correct
program does on the host (floating-point relaxations the host did not ask
for, ABI flags, unknown flags, a conservative flag the host asks for and
the build lacks) and a preference mismatch otherwise (schema/descriptor.md,
section 5.1).
"""

from __future__ import annotations

from typing import Final

from ipfsbin.descriptor.cflags import (
    CONSERVATIVE_FLAGS,
    OPTIMIZATION_FLAGS,
    OPTIONAL_FLAGS,
    is_code_only,
)
from ipfsbin.descriptor.model import OptProfile
from ipfsbin.descriptor.verdict import Mismatch

__all__ = ["DEFAULT_FLAGS", "RELAXING_MATH", "STRICT_MATH", "opt_mismatches"]

DEFAULT_FLAGS: Final = {
    "x86_64": frozenset({"-m64", "-mfpmath=sse"}),
    "ppc64le": frozenset({"-m64", "-mabi=elfv2", "-mabi=altivec"}),
    "ppc64": frozenset({"-m64", "-mabi=altivec"}),
    "ppc": frozenset({"-mabi=altivec"}),
}
"""Flags that restate what the compilers for a CHOST family do anyway (GCC defines
the same ABI macros and lays data out alike with and without them): a build
with one equals one without."""

RELAXING_MATH: Final = frozenset(
    {
        "-fassociative-math",
        "-freciprocal-math",
        "-ffinite-math-only",
        "-fno-math-errno",
        "-fno-signed-zeros",
        "-fno-trapping-math",
        "-fcx-limited-range",
        "-fcx-fortran-rules",
        "-fsingle-precision-constant",
        "-fexcess-precision=fast",
        "-ffp-contract=fast",
    }
)
"""Recorded ``math`` states that let results differ from IEEE/ISO C (what
``-ffast-math`` sets); a build with one is safe only on a host that asks for it."""
STRICT_MATH: Final = frozenset(
    {
        "-frounding-math",
        "-fsignaling-nans",
        "-fexcess-precision=standard",
        "-ffp-contract=off",
        "-ffp-contract=on",
        "-fmath-errno",
        "-fsigned-zeros",
        "-ftrapping-math",
        "-fno-associative-math",
        "-fno-reciprocal-math",
        "-fno-finite-math-only",
        "-fno-cx-limited-range",
        "-fno-single-precision-constant",
    }
)
"""Recorded ``math`` states stricter than the default; a host that asks for one
must get it. Any other state (Clang's spelled-out words) must be equal."""


def _opt_text(level: str) -> str:
    return f"-O{level}"


def _math_mismatches(variable: str, pkg: OptProfile, host: OptProfile) -> list[Mismatch]:
    if pkg.math == host.math:
        return []
    built = " ".join(pkg.math) or "the default floating-point semantics"
    wants = " ".join(host.math) or "the default ones"
    reason = f"{variable} floating-point semantics {built}, this host's are {wants}"
    pkg_math, host_math = set(pkg.math), set(host.math)
    known = RELAXING_MATH | STRICT_MATH
    unsafe = (
        (pkg_math & RELAXING_MATH) - host_math
        or (host_math & STRICT_MATH) - pkg_math
        or {m for m in pkg_math ^ host_math if m not in known}
    )
    if unsafe:
        return [Mismatch(axis="math", reason=reason, source=variable)]
    reason += " (the build keeps stricter ones, which this host's programs accept)"
    return [Mismatch(axis="math", reason=reason, source=variable, kind="preference")]


def _flag_mismatch(variable: str, flag: str, *, built: bool) -> Mismatch:
    if built:
        reason = f"{variable} has {flag}, this host's does not"
        preference = flag in OPTIMIZATION_FLAGS or flag in CONSERVATIVE_FLAGS
    else:
        reason = f"{variable} lacks {flag}, which this host's has"
        preference = flag in OPTIMIZATION_FLAGS or flag in OPTIONAL_FLAGS
    return Mismatch(
        axis="flags",
        reason=reason,
        source=variable,
        kind="preference" if preference else "safety",
    )


def opt_mismatches(
    variable: str, pkg: OptProfile, host: OptProfile, *, family: str
) -> list[Mismatch]:
    """-O level, ``math`` and kept flags of ``variable`` (``CFLAGS``/``CXXFLAGS``).

    Code-only flags (``CODE_ONLY_FLAGS``), ``tune`` and flags that restate the
    CHOST ``family``'s defaults (:data:`DEFAULT_FLAGS`) are not compared: they
    never refuse a build; the catalog uses code-only flags and tune to rank.
    """
    found: list[Mismatch] = []
    if pkg.opt != host.opt:
        found.append(
            Mismatch(
                axis="opt",
                reason=f"{variable} {_opt_text(pkg.opt)}, this host uses {_opt_text(host.opt)}",
                source=variable,
                kind="preference",
            )
        )
    found.extend(_math_mismatches(variable, pkg, host))
    same = DEFAULT_FLAGS.get(family, frozenset())
    pkg_flags = {f for f in pkg.flags if not is_code_only(f) and f not in same}
    host_flags = {f for f in host.flags if not is_code_only(f) and f not in same}
    found.extend(_flag_mismatch(variable, f, built=True) for f in sorted(pkg_flags - host_flags))
    found.extend(_flag_mismatch(variable, f, built=False) for f in sorted(host_flags - pkg_flags))
    return found
