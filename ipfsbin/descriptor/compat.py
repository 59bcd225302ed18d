"""May this package be installed on this host? (schema/descriptor.md, section 5)

``check_compatible`` computes every mismatch as a value; ``verify_compatible``
raises when there is one. Pure: the host is described by a HostProfile that
the caller fills from the running system.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ipfsbin.descriptor._archspec_map import (
    OPAQUE_MARCH,
    X86_64_BASELINE_FEATURES,
    ancestors,
    family,
    features,
    is_known_target,
)
from ipfsbin.descriptor.cflags import is_code_only
from ipfsbin.descriptor.cpv import compare_versions, parse_version
from ipfsbin.descriptor.model import OptProfile, Package
from ipfsbin.errors import DescriptorError

__all__ = [
    "AXES",
    "Compatibility",
    "HostProfile",
    "Mismatch",
    "UseConfig",
    "check_compatible",
    "target_runs_on",
    "verify_compatible",
]

AXES = ("chost", "target", "compiler", "libc", "opt", "flags", "use", "deps")


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    axis: str
    """One of :data:`AXES`."""
    reason: str
    """A sentence for the user."""


@dataclass(frozen=True, kw_only=True)
class Compatibility:
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def reasons(self) -> list[str]:
        return [m.reason for m in self.mismatches]


@dataclass(frozen=True, kw_only=True)
class UseConfig:
    """The USE flags a host wants for one package, and the IUSE its ebuild has."""

    use: frozenset[str]
    iuse: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "use", frozenset(self.use))
        object.__setattr__(self, "iuse", frozenset(self.iuse))


@dataclass(frozen=True, kw_only=True)
class HostProfile:
    """The host a package would be installed on."""

    chost: str
    target: str
    """Detected microarchitecture (``archspec.cpu.host().name``) or a declared ``gcc:NAME``."""
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    cflags: OptProfile
    """The host's own normalized CFLAGS (its target is not used: ``target`` is)."""
    cxxflags: OptProfile | None
    """The host's own CXXFLAGS profile; None when equal to ``cflags``."""
    use: Mapping[str, UseConfig] = field(default_factory=dict)
    """category/package -> wanted USE and the ebuild's IUSE."""
    installed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """category/package -> {slot: subslot} of what is installed."""

    def __post_init__(self) -> None:
        if not is_known_target(self.target):
            raise ValueError(
                f"host target {self.target!r} is neither an archspec microarchitecture "
                f"nor gcc:NAME for a name ipfsbin knows"
            )
        parse_version(self.libc_version)
        parse_version(self.compiler_version)
        # Copies, so that a profile stays what it was when checked.
        object.__setattr__(self, "use", MappingProxyType(dict(self.use)))
        object.__setattr__(
            self,
            "installed",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.installed.items()}),
        )

    @property
    def effective_cxxflags(self) -> OptProfile:
        return self.cflags if self.cxxflags is None else self.cxxflags


def target_runs_on(target: str, host: str) -> bool:
    """Does code built for ``target`` run on a ``host`` CPU (both archspec or gcc: names)?"""
    if host.startswith("gcc:"):
        if target == host:
            return True
        if target.startswith("gcc:") or not is_known_target(target):
            return False
        # A declared CPU archspec does not model runs what its floor runs.
        floor = OPAQUE_MARCH[host[4:]][1]
        return target == floor or target in ancestors(floor)
    if target.startswith("gcc:") or not is_known_target(target):
        return False
    if target == host or target in ancestors(host):
        return True
    # archspec's x86_64 tree does not descend from x86, yet every x86-64 CPU
    # runs 32-bit code using at most MMX/SSE/SSE2 plus the host's own features.
    if family(target) == "x86" and family(host) == "x86_64":
        return features(target) <= features(host) | X86_64_BASELINE_FEATURES
    return False


def _target_reason(target: str, host: str) -> str:
    if target.startswith("gcc:"):
        return (
            f"built for microarchitecture {target}, which archspec does not model: only a "
            f"host declared as {target} accepts it, this host is {host}"
        )
    if not is_known_target(target):
        return (
            f"built for microarchitecture {target}, unknown to this client's archspec "
            f"(this host is {host}); upgrading archspec may help"
        )
    return (
        f"built for microarchitecture {target}, this host is {host} (not {target} or a descendant)"
    )


def _version_mismatch(
    axis: str, verb: str, name: str, version: str, host_name: str, host_version: str
) -> Mismatch | None:
    if name != host_name:
        return Mismatch(axis=axis, reason=f"{verb} {name} {version}, this host has {host_name}")
    if compare_versions(version, host_version) > 0:
        return Mismatch(
            axis=axis,
            reason=f"{verb} {name} {version}, this host has {name} {host_version} (older)",
        )
    return None


def _opt_text(level: str) -> str:
    return f"-O{level}"


def _flag_mismatches(variable: str, pkg: OptProfile, host: OptProfile) -> list[Mismatch]:
    found: list[Mismatch] = []
    if pkg.opt != host.opt:
        found.append(
            Mismatch(
                axis="opt",
                reason=f"{variable} {_opt_text(pkg.opt)}, this host uses {_opt_text(host.opt)}",
            )
        )
    pkg_flags = {f for f in pkg.flags if not is_code_only(f)}
    host_flags = {f for f in host.flags if not is_code_only(f)}
    for flag in sorted(pkg_flags - host_flags):
        reason = f"{variable} has {flag}, this host's does not"
        found.append(Mismatch(axis="flags", reason=reason))
    for flag in sorted(host_flags - pkg_flags):
        reason = f"{variable} lacks {flag}, which this host's has"
        found.append(Mismatch(axis="flags", reason=reason))
    return found


def _use_mismatches(package: Package, host: HostProfile) -> list[Mismatch]:
    descriptor = package.descriptor
    cp = descriptor.cp
    wanted = host.use.get(cp)
    if wanted is None:
        return [Mismatch(axis="use", reason=f"this host states no USE flags for {cp}")]
    found: list[Mismatch] = []
    pkg_iuse = frozenset(descriptor.iuse)
    if pkg_iuse != wanted.iuse:
        parts = []
        if pkg_iuse - wanted.iuse:
            parts.append(f"package has {' '.join(sorted(pkg_iuse - wanted.iuse))}")
        if wanted.iuse - pkg_iuse:
            parts.append(f"this host's ebuild has {' '.join(sorted(wanted.iuse - pkg_iuse))}")
        found.append(Mismatch(axis="use", reason=f"IUSE differs for {cp}: {'; '.join(parts)}"))
    pkg_use = frozenset(descriptor.use) & pkg_iuse
    host_use = wanted.use & wanted.iuse
    if pkg_use != host_use:
        built = " ".join(sorted(pkg_use - host_use)) or "nothing more"
        wants = " ".join(sorted(host_use - pkg_use)) or "nothing more"
        reason = f"USE differs for {cp}: built with {built}, this host wants {wants}"
        found.append(Mismatch(axis="use", reason=reason))
    return found


def _dep_mismatches(package: Package, host: HostProfile) -> list[Mismatch]:
    found: list[Mismatch] = []
    for dep in package.descriptor.deps:
        slots = host.installed.get(dep.name, {})
        have = slots.get(dep.slot)
        if have is None:
            if dep.runtime:
                other = ", ".join(f"{dep.name}:{s}/{ss}" for s, ss in sorted(slots.items()))
                tail = f" (it has {other})" if other else ""
                found.append(
                    Mismatch(
                        axis="deps",
                        reason=f"built against {dep.name}:{dep.slot}/{dep.subslot}, "
                        f"which this host does not have installed{tail}",
                    )
                )
            continue
        if have != dep.subslot:
            found.append(
                Mismatch(
                    axis="deps",
                    reason=f"built against {dep.name}:{dep.slot}/{dep.subslot}, "
                    f"this host has {dep.name}:{dep.slot}/{have}",
                )
            )
    return found


def check_compatible(
    package: Package, host: HostProfile, *, ignore_use: bool = False
) -> Compatibility:
    """Every reason why ``package`` should not be installed on ``host`` (none: compatible).

    ``ignore_use`` leaves the USE/IUSE comparison to Portage, which makes it
    itself for ``--getbinpkg``.
    """
    platform = package.platform
    found: list[Mismatch] = []
    if platform.chost != host.chost:
        reason = f"built for CHOST {platform.chost}, this host is {host.chost}"
        found.append(Mismatch(axis="chost", reason=reason))
    for profile in (platform.cflags, platform.effective_cxxflags):
        if not target_runs_on(profile.target, host.target):
            reason = _target_reason(profile.target, host.target)
            found.append(Mismatch(axis="target", reason=reason))
            break
    for mismatch in (
        _version_mismatch(
            "compiler",
            "built with",
            platform.compiler,
            platform.compiler_version,
            host.compiler,
            host.compiler_version,
        ),
        _version_mismatch(
            "libc",
            "built against",
            platform.libc,
            platform.libc_version,
            host.libc,
            host.libc_version,
        ),
    ):
        if mismatch is not None:
            found.append(mismatch)
    found.extend(_flag_mismatches("CFLAGS", platform.cflags, host.cflags))
    found.extend(_flag_mismatches("CXXFLAGS", platform.effective_cxxflags, host.effective_cxxflags))
    if not ignore_use:
        found.extend(_use_mismatches(package, host))
    found.extend(_dep_mismatches(package, host))
    return Compatibility(mismatches=tuple(found))


def verify_compatible(package: Package, host: HostProfile, *, ignore_use: bool = False) -> None:
    """Raise :class:`DescriptorError` listing every mismatch, if there is any."""
    result = check_compatible(package, host, ignore_use=ignore_use)
    if not result.ok:
        raise DescriptorError(
            f"{package.descriptor.cpv} does not fit this host: " + "; ".join(result.reasons),
            hint="build it from source, or look for a build that matches this host",
        )
