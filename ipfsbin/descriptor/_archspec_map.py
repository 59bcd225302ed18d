"""Compiler -march/-mcpu names to archspec microarchitectures, built once.

archspec knows how to go from a target to compiler flags
(``TARGETS[t].compilers``); this module inverts that table, keeping only the
entries whose flags are the bare name (no extra ``-m`` feature flags, which
the name alone would not imply).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import archspec.cpu

__all__ = [
    "MarchEntry",
    "OPAQUE_MARCH",
    "X86_64_BASELINE_FEATURES",
    "ancestors",
    "family",
    "features",
    "default_tune",
    "is_known_target",
    "lookup_march",
    "march_map",
]


@dataclass(frozen=True, kw_only=True)
class MarchEntry:
    target: str
    """The archspec name (or ``gcc:<name>`` for an opaque one)."""
    default_tune: str
    """What the compiler tunes for when only this -march is given."""


# 32-bit x86 targets archspec models without a compiler entry; gcc's names.
_X86_32_NAMES: dict[str, str] = {
    "i386": "x86",
    "i686": "i686",
    "pentiumpro": "i686",
    "pentium2": "pentium2",
    "pentium3": "pentium3",
    "pentium3m": "pentium3",
    "pentium4": "pentium4",
    "pentium4m": "pentium4",
    "pentium-m": "pentium4",
    "prescott": "prescott",
}

OPAQUE_MARCH: dict[str, tuple[str, str]] = {
    # gcc/clang -march names archspec does not model:
    # name -> (archspec family, most specific archspec target whose ISA it surely has)
    "i486": ("x86", "x86"),
    "i586": ("x86", "x86"),
    "pentium": ("x86", "x86"),
    "lakemont": ("x86", "x86"),
    "pentium-mmx": ("x86", "x86"),
    "k6": ("x86", "x86"),
    "k6-2": ("x86", "x86"),
    "k6-3": ("x86", "x86"),
    "athlon": ("x86", "pentium2"),
    "athlon-tbird": ("x86", "pentium2"),
    "athlon-4": ("x86", "pentium3"),
    "athlon-xp": ("x86", "pentium3"),
    "athlon-mp": ("x86", "pentium3"),
    "c3": ("x86", "pentium2"),
    "c3-2": ("x86", "pentium3"),
    "c7": ("x86", "prescott"),
    "geode": ("x86", "x86"),
    "winchip-c6": ("x86", "x86"),
    "winchip2": ("x86", "x86"),
    "k8": ("x86_64", "x86_64"),
    "opteron": ("x86_64", "x86_64"),
    "athlon64": ("x86_64", "x86_64"),
    "athlon-fx": ("x86_64", "x86_64"),
    "k8-sse3": ("x86_64", "nocona"),
    "opteron-sse3": ("x86_64", "nocona"),
    "athlon64-sse3": ("x86_64", "nocona"),
    "btver1": ("x86_64", "core2"),
    "btver2": ("x86_64", "x86_64_v2"),
    "bonnell": ("x86_64", "core2"),
    "atom": ("x86_64", "core2"),
    "silvermont": ("x86_64", "x86_64_v2"),
    "slm": ("x86_64", "x86_64_v2"),
    "goldmont": ("x86_64", "x86_64_v2"),
    "goldmont-plus": ("x86_64", "x86_64_v2"),
    "tremont": ("x86_64", "x86_64_v2"),
    "knm": ("x86_64", "broadwell"),
    "icelake-server": ("x86_64", "icelake"),
    "cooperlake": ("x86_64", "cascadelake"),
    "tigerlake": ("x86_64", "icelake"),
    "rocketlake": ("x86_64", "icelake"),
    "emeraldrapids": ("x86_64", "sapphirerapids"),
    "graniterapids": ("x86_64", "sapphirerapids"),
    "graniterapids-d": ("x86_64", "sapphirerapids"),
    "sierraforest": ("x86_64", "x86_64_v3"),
    "grandridge": ("x86_64", "x86_64_v3"),
    "clearwaterforest": ("x86_64", "x86_64_v3"),
    "pantherlake": ("x86_64", "alderlake"),
    "lunarlake": ("x86_64", "alderlake"),
    "meteorlake": ("x86_64", "alderlake"),
    "raptorlake": ("x86_64", "alderlake"),
    "gracemont": ("x86_64", "x86_64_v3"),
    "diamondrapids": ("x86_64", "sapphirerapids"),
}

# Every x86-64 CPU runs MMX, SSE and SSE2 code: the ISA requires them.
X86_64_BASELINE_FEATURES: frozenset[str] = frozenset({"mmx", "sse", "sse2"})


def _bare_name(target: Any, entry: dict[str, str]) -> str | None:
    """The compiler name an entry stands for, if its flags are that name alone."""
    name = entry.get("name", target.name)
    arch_name: str | None = None
    for token in entry["flags"].replace("{name}", name).split():
        if token.startswith(("-march=", "-mcpu=")) and arch_name is None:
            arch_name = token.split("=", 1)[1]
        elif not token.startswith("-mtune="):
            return None
    return arch_name


def _default_tune(target_name: str) -> str:
    # The compiler tunes for the -march CPU itself, except for the generic
    # ISA levels (x86-64-v3, armv8.2-a, ...), which it tunes for "generic".
    if archspec.cpu.TARGETS[target_name].vendor == "generic":
        return "generic"
    return target_name


def _is_ancestor(candidate: str, of: str) -> bool:
    return candidate in {a.name for a in archspec.cpu.TARGETS[of].ancestors}


def _prefer(old: str, new: str) -> str:
    """Of two targets claiming one compiler name, the one the name surely implies."""
    if _is_ancestor(new, old):
        return new
    if _is_ancestor(old, new):
        return old
    # Unrelated targets: either one has every feature the name enables (it is
    # that target's own flag), so either is safe; take one deterministically.
    return min(old, new)


@functools.cache
def march_map() -> dict[str, tuple[MarchEntry, ...]]:
    """Compiler -march (or -mcpu) name -> its target in each family, built once.

    One name can stand for targets of several families (``power9`` is
    ``power9`` on ppc64 and ``power9le`` on ppc64le); the CHOST picks one.
    """
    targets: dict[tuple[str, str], str] = {}
    for target in archspec.cpu.TARGETS.values():
        target_family = target.family.name
        for compiler in ("gcc", "clang"):
            for entry in target.compilers.get(compiler, []):
                name = _bare_name(target, entry)
                if name is None:
                    continue
                old = targets.get((name, target_family))
                new = target.name if old is None else _prefer(old, target.name)
                targets[(name, target_family)] = new
    extra = list(_X86_32_NAMES.items()) + [(t, t) for t in archspec.cpu.TARGETS]
    for name, target_name in extra:
        if not any(key[0] == name for key in targets):
            targets[(name, family(target_name))] = target_name
    mapping: dict[str, list[MarchEntry]] = {}
    for (name, _family), target_name in sorted(targets.items()):
        entry = MarchEntry(target=target_name, default_tune=_default_tune(target_name))
        mapping.setdefault(name, []).append(entry)
    for name in OPAQUE_MARCH:
        if name not in mapping:
            opaque = f"gcc:{name}"
            mapping[name] = [MarchEntry(target=opaque, default_tune=opaque)]
    return {name: tuple(entries) for name, entries in mapping.items()}


def lookup_march(name: str, families: frozenset[str]) -> MarchEntry | None:
    """The target ``name`` selects for a CHOST running ``families`` (any, if empty)."""
    entries = march_map().get(name, ())
    for entry in entries:
        if not families or family(entry.target) in families:
            return entry
    return entries[0] if entries else None


def default_tune(target: str) -> str:
    """What the compiler tunes for when only ``-march`` of ``target`` is given."""
    if target.startswith("gcc:"):
        return target
    return _default_tune(target)


def is_known_target(name: str) -> bool:
    if name.startswith("gcc:"):
        return name[4:] in OPAQUE_MARCH
    return name in archspec.cpu.TARGETS


def family(name: str) -> str:
    if name.startswith("gcc:"):
        return OPAQUE_MARCH[name[4:]][0]
    return str(archspec.cpu.TARGETS[name].family.name)


def ancestors(name: str) -> frozenset[str]:
    return frozenset(a.name for a in archspec.cpu.TARGETS[name].ancestors)


def features(name: str) -> frozenset[str]:
    return frozenset(archspec.cpu.TARGETS[name].features)
