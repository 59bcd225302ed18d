"""May this package be installed on this host? (schema/descriptor.md, section 5)

``check_compatible`` computes every mismatch as a value; ``verify_compatible``
raises when there is one. Pure: the host is described by a HostProfile that
the caller fills from the running system.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ipfsbin.descriptor.cpv import compare_versions, parse_version
from ipfsbin.descriptor.hardening import Shortfall
from ipfsbin.descriptor.isa import PRIVILEGED_ONLY, cpu_flag_features, isa_label
from ipfsbin.descriptor.model import OptProfile, Package, Platform
from ipfsbin.descriptor.optcompare import opt_mismatches
from ipfsbin.descriptor.toolchain import chost_family
from ipfsbin.descriptor.verdict import EXACT, Compatibility, Mismatch, SharingPolicy
from ipfsbin.errors import DescriptorError

__all__ = [
    "AXES",
    "Compatibility",
    "HostProfile",
    "Mismatch",
    "PlatformVerdict",
    "SharingPolicy",
    "UseConfig",
    "check_compatible",
    "check_platform",
    "lacking",
    "platform_verdict",
    "verify_compatible",
]

AXES = (
    "chost",
    "isa",
    "compiler",
    "libc",
    "opt",
    "math",
    "flags",
    "hardening",
    "runtime",
    "use",
    "deps",
)


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
    cpu_features: frozenset[str]
    """The features of this host's CPU itself (``host_cpu_features()``), never a label's."""
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    cflags: OptProfile
    """The host's own normalized CFLAGS: its hardening is what it asks of packages."""
    cxxflags: OptProfile | None
    """The host's own CXXFLAGS profile; None when equal to ``cflags``."""
    use: Mapping[str, UseConfig] = field(default_factory=dict)
    """category/package -> wanted USE and the ebuild's IUSE."""
    installed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """category/package -> {slot: subslot} of what is installed."""
    provides: Mapping[str, frozenset[str]] | None = None
    """Multilib category -> sonames the installed packages PROVIDE; None when unknown."""
    runtime: frozenset[str] = frozenset()
    """Sonames the host's own flags make its programs need (``runtime_needs``)."""

    def __post_init__(self) -> None:
        chost_family(self.chost)
        parse_version(self.libc_version)
        parse_version(self.compiler_version)
        # Copies, so that a profile stays what it was when checked.
        object.__setattr__(self, "cpu_features", frozenset(self.cpu_features))
        object.__setattr__(self, "runtime", frozenset(self.runtime))
        object.__setattr__(self, "use", MappingProxyType(dict(self.use)))
        object.__setattr__(
            self,
            "installed",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.installed.items()}),
        )
        if self.provides is not None:
            object.__setattr__(
                self,
                "provides",
                MappingProxyType({k: frozenset(v) for k, v in self.provides.items()}),
            )

    @property
    def effective_cxxflags(self) -> OptProfile:
        return self.cflags if self.cxxflags is None else self.cxxflags

    @property
    def provided(self) -> frozenset[str] | None:
        """Every soname provided, whatever its multilib category; None when unknown."""
        if self.provides is None:
            return None
        return frozenset(s for sonames in self.provides.values() for s in sonames)


def lacking(needed: Iterable[str], cpu_features: frozenset[str]) -> tuple[str, ...]:
    """The features of ``needed`` that a CPU with ``cpu_features`` lacks, sorted."""
    return tuple(sorted(set(needed) - cpu_features))


def _words(items: tuple[str, ...]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _needs(missing: tuple[str, ...], what: str) -> str:
    pronoun = "it" if len(missing) == 1 else "them"
    return f"needs {_words(missing)}, {what} lacks {pronoun}"


def _flags_isa_mismatches(platform: Platform, host: HostProfile) -> list[Mismatch]:
    found: list[Mismatch] = []
    seen: set[str] = set()
    family = chost_family(host.chost)
    for source, profile in (("CFLAGS", platform.cflags), ("CXXFLAGS", platform.effective_cxxflags)):
        needed = set(profile.features) - PRIVILEGED_ONLY
        missing = tuple(f for f in lacking(needed, host.cpu_features) if f not in seen)
        if missing:
            seen.update(missing)
            label = isa_label(family, frozenset(profile.features))
            built = f"{source} build for {label}" if label != family else f"{source} build"
            found.append(
                Mismatch(
                    axis="isa",
                    reason=f"{built}: {_needs(missing, 'this CPU')}",
                    missing=missing,
                    source=source,
                )
            )
    return found


def _use_isa_mismatches(package: Package, host: HostProfile) -> list[Mismatch]:
    found: list[Mismatch] = []
    try:
        by_flag = cpu_flag_features(package.descriptor.use)
    except DescriptorError as exc:
        return [Mismatch(axis="isa", reason=exc.message, source="USE")]
    for flag, features in sorted(by_flag.items()):
        missing = lacking(features, host.cpu_features)
        if missing:
            found.append(
                Mismatch(
                    axis="isa",
                    reason=f"built with USE={flag}: {_needs(missing, 'this CPU')}",
                    missing=missing,
                    source=f"USE={flag}",
                )
            )
    return found


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


def _libc_mismatch(platform: Platform, host: HostProfile) -> Mismatch | None:
    return _version_mismatch(
        "libc",
        "built against",
        platform.libc,
        platform.libc_version,
        host.libc,
        host.libc_version,
    )


_ASPECT_TEXT = {
    "stack_protector": "stack protector",
    "fortify": "_FORTIFY_SOURCE",
    "stack_clash": "stack-clash protection",
    "cf_protection": "control-flow protection",
    "auto_var_init": "automatic variable initialization",
    "pie": "PIE",
}


def _shortfall_text(shortfall: Shortfall) -> str:
    return (
        f"{_ASPECT_TEXT[shortfall.aspect]} {shortfall.built}, this host asks for {shortfall.wanted}"
    )


def _hardening_mismatches(variable: str, pkg: OptProfile, host: OptProfile) -> list[Mismatch]:
    shortfalls = pkg.hardening.shortfalls(host.hardening)
    if not shortfalls:
        return []
    reason = f"{variable} build is less hardened: " + "; ".join(
        _shortfall_text(s) for s in shortfalls
    )
    missing = tuple(sorted(s.aspect for s in shortfalls))
    return [Mismatch(axis="hardening", reason=reason, missing=missing, source=variable)]


def _flags_runtime_mismatches(
    platform: Platform, host: HostProfile, provided: frozenset[str] | None
) -> tuple[list[Mismatch], frozenset[str]]:
    """The runtimes the build flags need that this host lacks; also the sonames those are."""
    have = host.runtime if provided is None else provided
    missing = tuple(s for s in platform.runtime if s not in have)
    if not missing:
        return [], frozenset()
    if provided is None:
        reason = (
            f"its build flags: needs {_words(missing)}; which libraries "
            "this host provides is unknown and its own flags do not use "
            f"{'it' if len(missing) == 1 else 'them'}"
        )
    else:
        reason = f"its build flags: {_needs(missing, 'this host')}"
    mismatch = Mismatch(axis="runtime", reason=reason, missing=missing, source="flags")
    return [mismatch], frozenset(missing)


def _requires_mismatches(
    package: Package, provided: frozenset[str] | None, flags_missing: frozenset[str]
) -> list[Mismatch]:
    found: list[Mismatch] = []
    if provided is None or not package.descriptor.requires:
        return found
    required = {s for _, sonames in package.descriptor.requires for s in sonames}
    missing = tuple(sorted(required - provided - flags_missing))
    if missing:
        reason = f"REQUIRES {_needs(missing, 'this host')} (no installed package provides it)"
        found.append(Mismatch(axis="runtime", reason=reason, missing=missing, source="REQUIRES"))
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


@dataclass(frozen=True, slots=True)
class PlatformVerdict:
    """The part of :func:`check_compatible` that only the platform and the host decide.

    Many builds share one platform: computed once per platform and host
    (:func:`platform_verdict`), it leaves only the per-build axes to judge.
    """

    same_chost: bool
    first: tuple[Mismatch, ...]
    """CHOST, or the CPU features of the flags (listed before a build's own ISA mismatches)."""
    rest: tuple[Mismatch, ...]
    """Compiler, libc, optimization, hardening and the flags' runtimes."""
    runtime_missing: frozenset[str]
    """Sonames the flags need that this host lacks (not repeated for REQUIRES)."""
    provided: frozenset[str] | None


def platform_verdict(
    platform: Platform, host: HostProfile, *, allow_weaker_hardening: bool = False
) -> PlatformVerdict:
    """What :func:`check_compatible` finds on the axes every build of ``platform`` shares."""
    same_chost = platform.chost == host.chost
    if same_chost:
        first = _flags_isa_mismatches(platform, host)
    else:
        reason = f"built for CHOST {platform.chost}, this host is {host.chost}"
        first = [Mismatch(axis="chost", reason=reason)]
    found: list[Mismatch] = []
    for mismatch in (
        _version_mismatch(
            "compiler",
            "built with",
            platform.compiler,
            platform.compiler_version,
            host.compiler,
            host.compiler_version,
        ),
        _libc_mismatch(platform, host),
    ):
        if mismatch is not None:
            found.append(mismatch)
    pairs = (
        ("CFLAGS", platform.cflags, host.cflags),
        ("CXXFLAGS", platform.effective_cxxflags, host.effective_cxxflags),
    )
    family = chost_family(host.chost)
    for variable, pkg_profile, host_profile in pairs:
        found.extend(opt_mismatches(variable, pkg_profile, host_profile, family=family))
    if not allow_weaker_hardening:
        for variable, pkg_profile, host_profile in pairs:
            found.extend(_hardening_mismatches(variable, pkg_profile, host_profile))
    provided = host.provided
    runtime, runtime_missing = _flags_runtime_mismatches(platform, host, provided)
    return PlatformVerdict(
        same_chost=same_chost,
        first=tuple(first),
        rest=(*found, *runtime),
        runtime_missing=runtime_missing,
        provided=provided,
    )


def check_compatible(
    package: Package,
    host: HostProfile,
    *,
    ignore_use: bool = False,
    allow_weaker_hardening: bool = False,
    platform: PlatformVerdict | None = None,
) -> Compatibility:
    """Every reason why ``package`` should not be installed on ``host`` (none: compatible).

    ``ignore_use`` leaves the USE/IUSE comparison to Portage, which makes it
    itself for ``--getbinpkg``; CPU feature USE flags (``cpu_flags_*``) are
    checked against the CPU whatever it says. ``allow_weaker_hardening`` is
    the policy that accepts builds less hardened than the host's own flags.
    ``platform``, when given, is :func:`platform_verdict` of the package's
    platform on ``host`` with the same ``allow_weaker_hardening``.
    """
    shared = platform or platform_verdict(
        package.platform, host, allow_weaker_hardening=allow_weaker_hardening
    )
    found = list(shared.first)
    if shared.same_chost and package.descriptor.use:
        found.extend(_use_isa_mismatches(package, host))
    found.extend(shared.rest)
    found.extend(_requires_mismatches(package, shared.provided, shared.runtime_missing))
    if not ignore_use:
        found.extend(_use_mismatches(package, host))
    if package.descriptor.deps:
        found.extend(_dep_mismatches(package, host))
    return Compatibility(mismatches=tuple(found))


def check_platform(
    platform: Platform, host: HostProfile, *, accept_chosts: Iterable[str] = ()
) -> Compatibility:
    """Why no build of ``platform`` could be installed on ``host`` (none: some might be).

    Only the axes every build of a platform shares and no policy can waive:
    CHOST (or one of ``accept_chosts``), the CPU features of its flags, the
    compiler family (its version may catch up) and the C library. So a
    platform refused here is refused by :func:`check_compatible` for every
    build; one accepted may still be refused per build.
    """
    found: list[Mismatch] = []
    if platform.chost == host.chost:
        found.extend(_flags_isa_mismatches(platform, host))
    elif platform.chost not in set(accept_chosts):
        reason = f"built for CHOST {platform.chost}, this host is {host.chost}"
        found.append(Mismatch(axis="chost", reason=reason))
    if platform.compiler != host.compiler:
        reason = f"built with {platform.compiler}, this host has {host.compiler}"
        found.append(Mismatch(axis="compiler", reason=reason))
    libc = _libc_mismatch(platform, host)
    return Compatibility(mismatches=(*found, *([] if libc is None else [libc])))


def verify_compatible(
    package: Package,
    host: HostProfile,
    *,
    ignore_use: bool = False,
    allow_weaker_hardening: bool = False,
    sharing: SharingPolicy = EXACT,
) -> None:
    """Raise :class:`DescriptorError` listing every mismatch ``sharing`` does not accept."""
    result = check_compatible(
        package, host, ignore_use=ignore_use, allow_weaker_hardening=allow_weaker_hardening
    )
    refusals = result.refusals(sharing)
    if refusals:
        raise DescriptorError(
            f"{package.descriptor.cpv} does not fit this host: "
            + "; ".join(m.reason for m in refusals),
            hint="build it from source, or look for a build that matches this host",
        )
