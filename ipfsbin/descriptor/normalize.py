"""Build facts (plain strings from a binpkg) to Platform and Descriptor.

The only outside input is the builder's compiler, asked through a probe
(:mod:`ipfsbin.descriptor.toolchain`), so the same facts give the same CIDs
on any machine with the compiler for the CHOST.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields, replace

from ipfsbin.descriptor.cflags import normalize_ldflags, runtime_needs
from ipfsbin.descriptor.depstr import merge_slot_deps, parse_requires
from ipfsbin.descriptor.isa import cpu_flag_features
from ipfsbin.descriptor.model import Descriptor, Package, Platform, split_cpv
from ipfsbin.descriptor.profile import normalize_cflags
from ipfsbin.descriptor.toolchain import Probe
from ipfsbin.errors import DescriptorError

__all__ = ["BuildFacts", "normalize", "normalize_platform"]


@dataclass(frozen=True, kw_only=True)
class BuildFacts:
    """What a binpkg (and the build) records, as Portage writes it: all strings."""

    chost: str
    arch: str
    profile: str
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    cflags: str
    cxxflags: str
    ldflags: str
    cpv: str
    slot: str
    repository: str
    eapi: str
    use: str
    iuse: str
    iuse_effective: str
    rdepend: str = ""
    depend: str = ""
    bdepend: str = ""
    requires: str = ""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str):
                kind = type(value).__name__
                raise TypeError(f"BuildFacts.{field.name} must be a str, not {kind}")


def _refuse(what: str, exc: Exception) -> DescriptorError:
    return DescriptorError(f"{what}: {exc}")


def normalize_platform(
    facts: BuildFacts, *, host_target: str | None = None, probe: Probe | None = None
) -> Platform:
    """The Platform of a build.

    ``host_target`` (archspec's name for this machine) says this is the
    builder, so ``native`` may be resolved; ``probe`` asks the compiler
    (default: GCC for the CHOST found on PATH).
    """
    if probe is None:
        # Every build of one builder has the same platform facts: ask the compiler once.
        key = replace(facts, **{name: "" for name in _NOT_PLATFORM})
        return _default_probe_platform(key, host_target)
    return _platform(facts, host_target, probe)


_NOT_PLATFORM = tuple(
    f.name
    for f in fields(BuildFacts)
    if f.name
    not in {
        "chost",
        "arch",
        "profile",
        "libc",
        "libc_version",
        "compiler",
        "compiler_version",
        "cflags",
        "cxxflags",
        "ldflags",
    }
)


@functools.lru_cache(maxsize=64)
def _default_probe_platform(facts: BuildFacts, host_target: str | None) -> Platform:
    return _platform(facts, host_target, None)


def _platform(facts: BuildFacts, host_target: str | None, probe: Probe | None) -> Platform:
    chost = facts.chost.strip()
    compiler = facts.compiler.strip()
    if compiler not in ("gcc", "clang"):
        raise DescriptorError(
            f"compiler {compiler!r} is not gcc or clang",
            hint="only builds by GCC or Clang are described",
        )
    cflags = normalize_cflags(
        facts.cflags, chost=chost, host_target=host_target, probe=probe, compiler=compiler
    )
    cxxflags = normalize_cflags(
        facts.cxxflags,
        chost=chost,
        host_target=host_target,
        probe=probe,
        variable="CXXFLAGS",
        compiler=compiler,
    )
    try:
        return Platform(
            chost=chost,
            arch=facts.arch.strip(),
            profile=facts.profile.strip(),
            libc=facts.libc.strip(),
            libc_version=facts.libc_version.strip(),
            compiler=facts.compiler.strip(),
            compiler_version=facts.compiler_version.strip(),
            cflags=cflags,
            cxxflags=None if cxxflags == cflags else cxxflags,
            ldflags=normalize_ldflags(facts.ldflags),
            runtime=runtime_needs(facts.cflags, facts.cxxflags, facts.ldflags),
        )
    except ValueError as exc:
        raise _refuse("cannot describe the build platform", exc) from exc


def _descriptor(facts: BuildFacts, platform: Platform) -> Descriptor:
    use = frozenset(facts.use.split())
    iuse = frozenset(flag.lstrip("+-") for flag in facts.iuse.split()) - {""}
    # IUSE_EFFECTIVE adds implicit flags (arch, elibc_*, ...) to IUSE.
    effective = frozenset(facts.iuse_effective.split()) | iuse
    slot, _, subslot = facts.slot.strip().partition("/")
    # Refuse now a CPU_FLAGS_* value whose feature cannot be checked on a host.
    cpu_flag_features(use & effective)
    try:
        split_cpv(facts.cpv.strip())
    except ValueError as exc:
        raise _refuse("cannot describe the package", exc) from exc
    try:
        return Descriptor(
            platform=platform.cid,
            cpv=facts.cpv.strip(),
            slot=slot,
            subslot=subslot or slot,
            repository=facts.repository.strip(),
            eapi=facts.eapi.strip(),
            use=tuple(sorted(use & effective)),
            iuse=tuple(sorted(iuse)),
            deps=merge_slot_deps(
                rdepend=facts.rdepend, depend=facts.depend, bdepend=facts.bdepend, use=use
            ),
            requires=parse_requires(facts.requires),
        )
    except ValueError as exc:
        raise _refuse(f"cannot describe {facts.cpv.strip()}", exc) from exc


def normalize(
    facts: BuildFacts, *, host_target: str | None = None, probe: Probe | None = None
) -> Package:
    """Platform and Descriptor of one build (``host_target``, ``probe``: see normalize_platform).

    Raises :class:`DescriptorError` (the package is not shared) when the flags
    or metadata cannot be normalized; the message says why.
    """
    platform = normalize_platform(facts, host_target=host_target, probe=probe)
    return Package(descriptor=_descriptor(facts, platform), platform=platform)
