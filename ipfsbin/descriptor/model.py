"""Platform and Descriptor values and their DAG-CBOR form (schema/descriptor.md).

Every object is in normal form once it exists (lists sorted and unique,
versions parseable), so its bytes and CID follow from its fields alone.
``from_dag`` rejects unknown fields and unknown ``type`` versions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.codec.fields import get_cid, get_list, get_map, get_str, kind_of
from ipfsbin.descriptor.cpv import is_cp, parse_version, split_cpv
from ipfsbin.descriptor.hardening import Hardening
from ipfsbin.errors import SchemaError

__all__ = [
    "DESCRIPTOR_TYPE",
    "OPT_LEVELS",
    "PLATFORM_TYPE",
    "Descriptor",
    "OptProfile",
    "Package",
    "Platform",
    "SlotDep",
    "split_cpv",
]

PLATFORM_TYPE = "ipfsbin/platform/2"
DESCRIPTOR_TYPE = "ipfsbin/descriptor/2"
OPT_LEVELS = ("0", "1", "2", "3", "s", "z", "g", "fast")
COMPILER_FAMILIES = ("gcc", "clang")

T = TypeVar("T")


def _require_text(name: str, value: str, *, empty_ok: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not empty_ok and not value:
        raise ValueError(f"{name} is empty")
    if value != value.strip() or "\n" in value or "\t" in value:
        raise ValueError(f"{name} {value!r} has surrounding or embedded whitespace")


def _require_sorted(name: str, items: tuple[str, ...]) -> None:
    if not isinstance(items, tuple) or not all(isinstance(i, str) and i for i in items):
        raise TypeError(f"{name} must be a tuple of non-empty str")
    if len(items) > 1 and list(items) != sorted(set(items)):
        raise ValueError(f"{name} must be sorted and free of duplicates: {list(items)}")


def _require_version(name: str, value: str) -> None:
    _require_text(name, value)
    parse_version(value)


# --- reading codec values ---------------------------------------------------
# Scalars go through ipfsbin.codec.fields. The map and type checks stay here: a
# descriptor's messages list every field it expects and call a newer type
# version "not understood by this client", wording users already see.


def _map(value: Any, what: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be a map, got {kind_of(value)}")
    if len(value) == len(keys) and value.keys() == _key_set(keys):
        return value
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise SchemaError(
            f"{what} has unknown field(s) {', '.join(unknown)}; expected only {', '.join(keys)}"
        )
    missing = [k for k in keys if k not in value]
    if missing:
        raise SchemaError(f"{what} lacks field(s) {', '.join(missing)}")
    return value


@functools.cache
def _key_set(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(keys)  # a handful of constant field tuples


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    items = get_list(value, what)
    for item in items:
        if type(item) is not str:
            # only now: naming the position costs more than the check
            for i, each in enumerate(items):
                get_str(each, f"{what}[{i}]")
    return tuple(items)


def _check_type(value: Mapping[str, Any], expected: str) -> None:
    if not isinstance(value, dict):
        raise SchemaError(f"expected a {expected} map, got {kind_of(value)}")
    seen = value.get("type")
    if seen == expected:
        return
    family = expected.rsplit("/", 1)[0] + "/"
    version = seen[len(family) :] if isinstance(seen, str) and seen.startswith(family) else ""
    if version.isdigit() and int(version) < int(expected[len(family) :]):
        # Version 1 keyed builds by a CPU label and left hardening out: a host
        # could be given code its CPU cannot run.
        raise SchemaError(
            f"object type {seen} is from an older ipfsbin and no longer accepted "
            f"(this client needs {expected}, which records the build's CPU features)",
            hint="the builder re-publishes the package with a current ipfsbin",
        )
    if isinstance(seen, str) and seen.startswith(family):
        raise SchemaError(
            f"object type {seen} is not understood by this client, which knows {expected}",
            hint="this client is too old for it: upgrade ipfsbin",
        )
    raise SchemaError(f"expected type {expected}, got {seen!r}")


def _build(what: str, factory: Callable[[], T]) -> T:
    try:
        return factory()
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"invalid {what}: {exc}") from exc


# --- the objects --------------------------------------------------------------


class _Block:
    """The block of a top-level object: its DAG-CBOR bytes and CID, computed once.

    Decoded objects keep the bytes they came from (``from_block``), so an
    identity is never found by re-encoding.
    """

    def to_dag(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dag(cls, value: Any) -> Self:
        raise NotImplementedError

    @functools.cached_property
    def block(self) -> tuple[CID, bytes]:
        """(CID, DAG-CBOR bytes) of this object."""
        return dagcbor.encode_block(self.to_dag())

    @property
    def cid(self) -> CID:
        return self.block[0]

    @classmethod
    def from_block(cls, cid: CID, data: bytes) -> Self:
        """Decode a block after checking it hashes to ``cid``; keeps the bytes."""
        obj = cls.from_dag(dagcbor.decode_block(cid, data))
        obj.__dict__["block"] = (cid, data)
        return obj

    @classmethod
    def from_checked_block(cls, cid: CID, data: bytes) -> Self:
        """:meth:`from_block` for bytes an earlier strict decode proved canonical.

        The hash and every model check still apply; only the canonical-form
        proof is skipped (``dagcbor.decode_checked_block``).
        """
        obj = cls.from_dag(dagcbor.decode_checked_block(cid, data))
        obj.__dict__["block"] = (cid, data)
        return obj


@dataclass(frozen=True, kw_only=True)
class OptProfile:
    """What the CFLAGS (or CXXFLAGS) of a build mean, as the builder's compiler says."""

    features: tuple[str, ...]
    """Effective instruction-set features, sorted (archspec/cpuinfo names)."""
    tune: str | None
    """The -mtune in effect as the compiler reports it; None when it reports none."""
    opt: str
    """-O level without the ``-O``: one of :data:`OPT_LEVELS`."""
    math: tuple[str, ...]
    """Floating-point options whose effective state differs from the default at ``opt``."""
    hardening: Hardening
    flags: tuple[str, ...]
    """Every other kept flag, sorted."""

    def __post_init__(self) -> None:
        _require_sorted("features", self.features)
        if self.tune is not None:
            _require_text("tune", self.tune)
        if self.opt not in OPT_LEVELS:
            raise ValueError(f"opt {self.opt!r} is not one of {', '.join(OPT_LEVELS)}")
        _require_sorted("math", self.math)
        if not isinstance(self.hardening, Hardening):
            raise TypeError("hardening must be a Hardening")
        _require_sorted("flags", self.flags)

    def to_dag(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "tune": self.tune,
            "opt": self.opt,
            "math": list(self.math),
            "hardening": self.hardening.to_dag(),
            "flags": list(self.flags),
        }

    @classmethod
    def from_dag(cls, value: Any) -> OptProfile:
        m = _map(value, "optimization profile", _PROFILE_KEYS)
        tune = m["tune"]
        hardening = Hardening.from_dag(m["hardening"])
        return _build(
            "optimization profile",
            lambda: cls(
                features=_str_list(m["features"], "features"),
                tune=None if tune is None else get_str(tune, "tune"),
                opt=get_str(m["opt"], "opt"),
                math=_str_list(m["math"], "math"),
                hardening=hardening,
                flags=_str_list(m["flags"], "flags"),
            ),
        )


_PROFILE_KEYS = ("features", "tune", "opt", "math", "hardening", "flags")

_PLATFORM_KEYS = (
    "type",
    "chost",
    "arch",
    "profile",
    "libc",
    "compiler",
    "cflags",
    "cxxflags",
    "ldflags",
    "runtime",
)


@dataclass(frozen=True, kw_only=True)
class Platform(_Block):
    """What every package built on one host with one set of flags shares."""

    chost: str
    arch: str
    profile: str
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    cflags: OptProfile
    cxxflags: OptProfile | None
    """None when CXXFLAGS normalize to ``cflags``."""
    ldflags: tuple[str, ...]
    runtime: tuple[str, ...]
    """Sonames of toolchain runtimes the flags make programs need, sorted."""

    def __post_init__(self) -> None:
        for name in ("chost", "arch", "profile", "libc"):
            _require_text(name, getattr(self, name))
        _require_version("libc_version", self.libc_version)
        if self.compiler not in COMPILER_FAMILIES:
            raise ValueError(
                f"compiler {self.compiler!r} is not one of {', '.join(COMPILER_FAMILIES)}"
            )
        _require_version("compiler_version", self.compiler_version)
        if not isinstance(self.cflags, OptProfile):
            raise TypeError("cflags must be an OptProfile")
        if self.cxxflags is not None and not isinstance(self.cxxflags, OptProfile):
            raise TypeError("cxxflags must be an OptProfile or None")
        if self.cxxflags == self.cflags:
            raise ValueError("cxxflags equal to cflags must be given as None")
        _require_sorted("ldflags", self.ldflags)
        _require_sorted("runtime", self.runtime)

    @property
    def effective_cxxflags(self) -> OptProfile:
        return self.cflags if self.cxxflags is None else self.cxxflags

    def to_dag(self) -> dict[str, Any]:
        return {
            "type": PLATFORM_TYPE,
            "chost": self.chost,
            "arch": self.arch,
            "profile": self.profile,
            "libc": {"name": self.libc, "version": self.libc_version},
            "compiler": {"family": self.compiler, "version": self.compiler_version},
            "cflags": self.cflags.to_dag(),
            "cxxflags": None if self.cxxflags is None else self.cxxflags.to_dag(),
            "ldflags": list(self.ldflags),
            "runtime": list(self.runtime),
        }

    @classmethod
    def from_dag(cls, value: Any) -> Platform:
        _check_type(value, PLATFORM_TYPE)
        m = _map(value, "platform", _PLATFORM_KEYS)
        libc = _map(m["libc"], "platform libc", ("name", "version"))
        compiler = _map(m["compiler"], "platform compiler", ("family", "version"))
        cxxflags = m["cxxflags"]
        return _build(
            "platform",
            lambda: cls(
                chost=get_str(m["chost"], "chost"),
                arch=get_str(m["arch"], "arch"),
                profile=get_str(m["profile"], "profile"),
                libc=get_str(libc["name"], "libc name"),
                libc_version=get_str(libc["version"], "libc version"),
                compiler=get_str(compiler["family"], "compiler family"),
                compiler_version=get_str(compiler["version"], "compiler version"),
                cflags=OptProfile.from_dag(m["cflags"]),
                cxxflags=None if cxxflags is None else OptProfile.from_dag(cxxflags),
                ldflags=_str_list(m["ldflags"], "ldflags"),
                runtime=_str_list(m["runtime"], "runtime"),
            ),
        )


@dataclass(frozen=True, kw_only=True, order=True)
class SlotDep:
    """A ``:=`` dependency and the SLOT/SUBSLOT the package was built against."""

    name: str
    """category/package"""
    slot: str
    subslot: str
    runtime: bool
    """In RDEPEND outside any ``||`` group: the host must have it installed."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not is_cp(self.name):
            raise ValueError(f"dependency name {self.name!r} is not category/package")
        _require_text("slot", self.slot)
        _require_text("subslot", self.subslot)
        if not isinstance(self.runtime, bool):
            raise TypeError("runtime must be a bool")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.slot, self.subslot)

    def to_dag(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "slot": self.slot,
            "subslot": self.subslot,
            "runtime": self.runtime,
        }

    @classmethod
    def from_dag(cls, value: Any) -> SlotDep:
        m = _map(value, "dependency", ("name", "slot", "subslot", "runtime"))
        runtime = m["runtime"]
        if not isinstance(runtime, bool):
            raise SchemaError(f"dependency runtime must be a bool, got {kind_of(runtime)}")
        return _build(
            "dependency",
            lambda: cls(
                name=get_str(m["name"], "name"),
                slot=get_str(m["slot"], "slot"),
                subslot=get_str(m["subslot"], "subslot"),
                runtime=runtime,
            ),
        )


_DESCRIPTOR_KEYS = (
    "type",
    "platform",
    "cpv",
    "slot",
    "subslot",
    "repository",
    "eapi",
    "use",
    "iuse",
    "deps",
    "requires",
)


@dataclass(frozen=True, kw_only=True)
class Descriptor(_Block):
    """One package build: identity, USE, dependency ABI and needed sonames."""

    platform: CID
    cpv: str
    slot: str
    subslot: str
    repository: str
    eapi: str
    use: tuple[str, ...]
    iuse: tuple[str, ...]
    deps: tuple[SlotDep, ...]
    requires: tuple[tuple[str, tuple[str, ...]], ...]
    """(multilib category, sorted sonames), sorted by category."""

    def __post_init__(self) -> None:
        if not isinstance(self.platform, CID):
            raise TypeError("platform must be a CID")
        split_cpv(self.cpv)
        for name in ("slot", "subslot", "repository", "eapi"):
            _require_text(name, getattr(self, name))
        _require_sorted("use", self.use)
        _require_sorted("iuse", self.iuse)
        if not isinstance(self.deps, tuple) or not all(isinstance(d, SlotDep) for d in self.deps):
            raise TypeError("deps must be a tuple of SlotDep")
        if self.deps:
            keys = [d.key for d in self.deps]
            if keys != sorted(set(keys)):
                raise ValueError("deps must be sorted by name, slot, subslot and unique on them")
        if self.requires:
            categories = [category for category, _ in self.requires]
            _require_sorted("requires categories", tuple(categories))
            for category, sonames in self.requires:
                _require_sorted(f"requires[{category}]", sonames)
                if not sonames:
                    raise ValueError(f"requires[{category}] is empty; leave the category out")

    @property
    def cp(self) -> str:
        category, package, _ = split_cpv(self.cpv)
        return f"{category}/{package}"

    def to_dag(self) -> dict[str, Any]:
        return {
            "type": DESCRIPTOR_TYPE,
            "platform": self.platform,
            "cpv": self.cpv,
            "slot": self.slot,
            "subslot": self.subslot,
            "repository": self.repository,
            "eapi": self.eapi,
            "use": list(self.use),
            "iuse": list(self.iuse),
            "deps": [d.to_dag() for d in self.deps],
            "requires": {category: list(sonames) for category, sonames in self.requires},
        }

    @classmethod
    def from_dag(cls, value: Any) -> Descriptor:
        _check_type(value, DESCRIPTOR_TYPE)
        m = _map(value, "descriptor", _DESCRIPTOR_KEYS)
        platform = get_cid(m["platform"], "descriptor platform")
        deps = get_list(m["deps"], "deps")
        requires = get_map(m["requires"], "requires")
        return _build(
            "descriptor",
            lambda: cls(
                platform=platform,
                cpv=get_str(m["cpv"], "cpv"),
                slot=get_str(m["slot"], "slot"),
                subslot=get_str(m["subslot"], "subslot"),
                repository=get_str(m["repository"], "repository"),
                eapi=get_str(m["eapi"], "eapi"),
                use=_str_list(m["use"], "use"),
                iuse=_str_list(m["iuse"], "iuse"),
                deps=tuple(SlotDep.from_dag(d) for d in deps),
                requires=tuple(
                    (category, _str_list(sonames, f"requires[{category}]"))
                    for category, sonames in sorted(requires.items())
                ),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Package:
    """A descriptor together with the platform it links to."""

    descriptor: Descriptor
    platform: Platform

    def __post_init__(self) -> None:
        if self.descriptor.platform != self.platform.cid:
            raise ValueError(
                f"descriptor links platform {self.descriptor.platform}, "
                f"not the given {self.platform.cid}"
            )
