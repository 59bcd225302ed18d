"""This host as Portage sees it: the input of the compatibility predicate on a client.

Everything is read through the ``portage`` library (settings, the installed
packages database, the repositories), never by parsing files by hand, so the
answer is the one ``emerge`` itself works with: the same make.conf and
profile stacking, package.use, and the same EPREFIX (``PORTAGE_CONFIGROOT``
and ``PORTAGE_OVERRIDE_EPREFIX`` are honoured as Portage honours them).

CFLAGS/CXXFLAGS go through the builders' own normalization
(:func:`ipfsbin.descriptor.cflags.normalize_cflags`, ``-march=native``
resolved to this CPU). libc and compiler come from the installed packages
database (``sys-libs/glibc``, ``sys-libs/musl``, ``sys-devel/gcc``,
``llvm-core/clang``); when it lists none (a prefix, a container), from the
running system, and :attr:`HostInfo.sources` says which.

The USE configuration Portage would apply depends on the package; it is read
per ``category/package`` on demand (:meth:`HostInfo.use_for`), because a
catalog only needs it for the packages it has builds of.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ipfsbin.descriptor.compat import Compatibility, HostProfile, UseConfig, check_platform
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.descriptor.depstr import merge_slot_deps
from ipfsbin.descriptor.isa import host_cpu_features, target_cpu_features
from ipfsbin.descriptor.model import OptProfile, Platform
from ipfsbin.descriptor.profile import normalize_cflags
from ipfsbin.errors import DescriptorError, HostError
from ipfsbin.host.facts import detect_compiler, detect_libc, host_target

__all__ = [
    "HostInfo",
    "InstalledPackage",
    "installed_binaries",
    "portage_config_root",
    "portage_pkgdir",
    "read_host",
]

_VERSION = re.compile(r"^\d+(?:\.\d+)*")
_LIBCS = (("glibc", "sys-libs/glibc"), ("musl", "sys-libs/musl"))
_COMPILERS = (("gcc", "sys-devel/gcc"), ("clang", "llvm-core/clang"), ("clang", "sys-devel/clang"))


@dataclass(frozen=True, kw_only=True)
class InstalledPackage:
    """One installed package as the installed-packages database records it."""

    cpv: str
    slot: str
    subslot: str
    use: frozenset[str]
    """Its enabled USE flags (all of them, as vardb lists them)."""
    deps: frozenset[tuple[str, str, str]]
    """The ``:=`` dependencies it was built against: (category/package, slot, subslot)."""

    @property
    def cp(self) -> str:
        category, package, _ = split_cpv(self.cpv)
        return f"{category}/{package}"


@dataclass(frozen=True, kw_only=True)
class HostInfo:
    """What the client believes about this host (``ipfsbin host`` prints it)."""

    chost: str
    accept_chosts: tuple[str, ...]
    arch: str
    profile: str
    cflags_raw: str
    cxxflags_raw: str
    target: str
    """archspec's name for this CPU (or the configured ``target``), for display."""
    cpu_features: frozenset[str]
    """The features the predicate checks builds against: the CPU's own, or the target's."""
    cflags: OptProfile
    cxxflags: OptProfile | None
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    use: tuple[str, ...]
    """The global USE (make.conf and profile), for display; per package see :meth:`use_for`."""
    installed: Mapping[str, Mapping[str, str]]
    """category/package -> {SLOT: SUBSLOT} of every installed package."""
    world: tuple[str, ...] = ()
    """The atoms of the world file (``@world``'s selected packages)."""
    packages: tuple[InstalledPackage, ...] = ()
    """Every installed package: version, USE and the sub-slots it was built against."""
    sources: Mapping[str, str]
    """Where libc and compiler were read: ``vardb`` or ``system``."""
    watched: tuple[str, ...] = ()
    """Files and directories whose change means the profile must be read again."""
    use_reader: Callable[[Iterable[str]], Mapping[str, UseConfig]] = field(
        default=lambda cps: {}, repr=False, compare=False
    )
    """Reads the USE configuration of packages (Portage's, for a host read by :func:`read_host`)."""

    def use_for(self, cps: Iterable[str]) -> Mapping[str, UseConfig]:
        """The USE Portage would enable, and the ebuild's IUSE, for each package the tree has.

        A package with no ebuild in any configured repository is left out (the
        predicate then refuses it on the USE axis: Portage could not use it).
        """
        return self.use_reader(cps)

    def compat_profile(self, cps: Iterable[str] = ()) -> HostProfile:
        """The predicate's input, with the USE configuration of ``cps``."""
        return HostProfile(
            chost=self.chost,
            cpu_features=self.cpu_features,
            libc=self.libc,
            libc_version=self.libc_version,
            compiler=self.compiler,
            compiler_version=self.compiler_version,
            cflags=self.cflags,
            cxxflags=self.cxxflags,
            use=self.use_for(cps),
            installed=self.installed,
        )

    def stamp(self) -> tuple[int, ...]:
        """Modification times of :attr:`watched` (0 for a missing one); equal: nothing changed."""
        found = []
        for path in self.watched:
            try:
                found.append(os.stat(path).st_mtime_ns)
            except OSError:
                found.append(0)
        return tuple(found)

    @cached_property
    def accepted_chosts(self) -> frozenset[str]:
        return frozenset((self.chost, *self.accept_chosts))

    def fits_platform(self, platform: Platform) -> Compatibility:
        """Could some build of ``platform`` be installed here? (the scope of a host replica)"""
        return check_platform(platform, self.compat_profile(), accept_chosts=self.accept_chosts)

    def to_json(self) -> dict[str, object]:
        return {
            "chost": self.chost,
            "accept_chosts": list(self.accept_chosts),
            "arch": self.arch,
            "profile": self.profile,
            "target": self.target,
            "cpu_features": sorted(self.cpu_features),
            "cflags": {"raw": self.cflags_raw, "normalized": self.cflags.to_dag()},
            "cxxflags": {
                "raw": self.cxxflags_raw,
                "normalized": (self.cxxflags or self.cflags).to_dag(),
            },
            "libc": {"name": self.libc, "version": self.libc_version},
            "compiler": {"family": self.compiler, "version": self.compiler_version},
            "sources": dict(self.sources),
            "use": list(self.use),
            "installed": {cp: dict(slots) for cp, slots in sorted(self.installed.items())},
        }


@dataclass(frozen=True)
class _Portage:
    settings: Any
    vardb: Any
    portdb: Any


def _open_portage(config_root: str | None) -> _Portage:
    try:
        import portage
        from portage.dbapi.porttree import portdbapi
        from portage.dbapi.vartree import vartree
    except ImportError as exc:  # pragma: no cover - portage is a dependency
        raise HostError(f"cannot import portage: {exc}") from exc
    try:
        settings = portage.config(
            config_root=config_root or os.environ.get("PORTAGE_CONFIGROOT") or None,
            eprefix=portage.const.EPREFIX,
        )
        settings.lock()
        return _Portage(
            settings=settings,
            # its own tree: vardbapi alone reaches for portage.db, which a process
            # that turned Portage's legacy globals off (as emerge's own tools do) has not
            vardb=vartree(settings=settings).dbapi,
            portdb=portdbapi(mysettings=portage.config(clone=settings)),
        )
    except Exception as exc:  # portage raises many unrelated types for a broken config
        raise HostError(
            f"Portage cannot read this host's configuration: {type(exc).__name__}: {exc}",
            hint="check that `emerge --info` works; PORTAGE_CONFIGROOT selects another root",
        ) from exc


def _version_of(vardb: Any, atom: str) -> str | None:
    from portage.versions import cpv_getversion

    matches = vardb.match(atom)
    if not matches:
        return None
    version: str = cpv_getversion(matches[-1])
    found = _VERSION.match(version)
    return found.group(0) if found else None


def _installed_or_running(
    vardb: Any,
    candidates: tuple[tuple[str, str], ...],
    detect: Callable[[], tuple[str, str]],
    what: str,
) -> tuple[str, str, str]:
    """(name, version, source): the first installed of ``candidates``, else ``detect()``."""
    for name, atom in candidates:
        version = _version_of(vardb, atom)
        if version is not None:
            return name, version, "vardb"
    try:
        name, version = detect()
    except DescriptorError as exc:
        atoms = ", ".join(atom for _, atom in candidates)
        raise HostError(
            f"cannot tell this host's {what}: none of {atoms} is installed, and {exc.message}",
            hint=exc.hint,
        ) from exc
    return name, version, "system"


def _installed(vardb: Any) -> dict[str, dict[str, str]]:
    from portage.versions import cpv_getkey

    found: dict[str, dict[str, str]] = {}
    for cpv in vardb.cpv_all():
        (slot_text,) = vardb.aux_get(cpv, ["SLOT"])
        slot, _, subslot = slot_text.strip().partition("/")
        found.setdefault(cpv_getkey(cpv), {})[slot or "0"] = subslot or slot or "0"
    return found


def _packages(vardb: Any) -> tuple[InstalledPackage, ...]:
    found = []
    for cpv in sorted(vardb.cpv_all()):
        slot_text, use_text, rdepend, depend, bdepend = vardb.aux_get(
            cpv, ["SLOT", "USE", "RDEPEND", "DEPEND", "BDEPEND"]
        )
        slot, _, subslot = slot_text.strip().partition("/")
        use = frozenset(use_text.split())
        try:
            deps = merge_slot_deps(rdepend=rdepend, depend=depend, bdepend=bdepend, use=use)
        except DescriptorError:
            deps = ()  # a record the tokenizer cannot read: compared as "no := deps"
        found.append(
            InstalledPackage(
                cpv=str(cpv),
                slot=slot or "0",
                subslot=subslot or slot or "0",
                use=use,
                deps=frozenset((d.name, d.slot, d.subslot) for d in deps),
            )
        )
    return tuple(found)


def _profile_name(settings: Any) -> str:
    path = os.path.realpath(settings.profile_path) if settings.profile_path else ""
    marker = "/profiles/"
    return path.rpartition(marker)[2].strip("/") if marker in path else path


def _world(settings: Any) -> tuple[str, ...]:
    from portage.const import WORLD_FILE
    from portage.util import grabfile

    return tuple(grabfile(os.path.join(settings["EROOT"], WORLD_FILE)))


def _watched(settings: Any) -> tuple[str, ...]:
    from portage.const import VDB_PATH

    config = os.path.join(settings["PORTAGE_CONFIGROOT"], "etc", "portage")
    names = ("make.conf", "package.use", "make.profile", "package.accept_keywords")
    return (
        os.path.join(settings["EROOT"], VDB_PATH),
        *(os.path.join(config, name) for name in names),
    )


def _use_for(handle: _Portage, cps: Iterable[str]) -> dict[str, UseConfig]:
    from portage.exception import PortageException

    settings = handle.portdb.settings
    found: dict[str, UseConfig] = {}
    for cp in sorted(set(cps)):
        try:
            cpv = handle.portdb.xmatch("bestmatch-visible", cp) or next(
                iter(reversed(handle.portdb.xmatch("match-all", cp))), ""
            )
            if not cpv:
                continue
            settings.setcpv(cpv, mydb=handle.portdb)
            use = frozenset(settings["PORTAGE_USE"].split())
            (iuse_text,) = handle.portdb.aux_get(cpv, ["IUSE"])
        except (KeyError, PortageException):
            continue
        iuse = frozenset(flag.lstrip("+-") for flag in iuse_text.split()) - {""}
        found[cp] = UseConfig(use=use & iuse, iuse=iuse)
    return found


def read_host(*, config_root: str | None = None, target: str | None = None) -> HostInfo:
    """This host, read through Portage; ``target`` overrides the detected microarchitecture.

    ``HostError`` with a hint when Portage cannot read the configuration or
    when libc or the compiler cannot be told.
    """
    handle = _open_portage(config_root)
    settings = handle.settings
    chost = settings.get("CHOST", "").strip()
    if not chost:
        raise HostError(
            "Portage's configuration sets no CHOST",
            hint="check make.conf and the profile (`emerge --info | grep CHOST`)",
        )
    cpu = target or host_target()
    try:
        features = target_cpu_features(target) if target else host_cpu_features()
    except DescriptorError as exc:
        raise HostError(f"the configured target: {exc.message}", hint=exc.hint) from exc
    cflags_raw = settings.get("CFLAGS", "")
    cxxflags_raw = settings.get("CXXFLAGS", cflags_raw)
    try:
        cflags = normalize_cflags(cflags_raw, chost=chost, host_target=cpu)
        cxxflags = normalize_cflags(cxxflags_raw, chost=chost, host_target=cpu)
    except DescriptorError as exc:
        raise HostError(
            f"this host's CFLAGS cannot be normalized: {exc.message}", hint=exc.hint
        ) from exc
    libc, libc_version, libc_source = _installed_or_running(
        handle.vardb, _LIBCS, detect_libc, "C library"
    )
    compiler, compiler_version, compiler_source = _installed_or_running(
        handle.vardb, _COMPILERS, detect_compiler, "compiler"
    )
    return HostInfo(
        chost=chost,
        accept_chosts=tuple(settings.get("ACCEPT_CHOSTS", "").split()),
        arch=settings.get("ARCH", ""),
        profile=_profile_name(settings),
        cflags_raw=" ".join(cflags_raw.split()),
        cxxflags_raw=" ".join(cxxflags_raw.split()),
        target=cpu,
        cpu_features=features,
        cflags=cflags,
        cxxflags=None if cxxflags == cflags else cxxflags,
        libc=libc,
        libc_version=libc_version,
        compiler=compiler,
        compiler_version=compiler_version,
        use=tuple(sorted(settings.get("USE", "").split())),
        installed=MappingProxyType(_installed(handle.vardb)),
        world=_world(settings),
        packages=_packages(handle.vardb),
        sources=MappingProxyType({"libc": libc_source, "compiler": compiler_source}),
        watched=_watched(settings),
        use_reader=lambda cps: _use_for(handle, cps),
    )


def portage_config_root() -> str:
    """Where this host's Portage configuration lives (``PORTAGE_CONFIGROOT``, else EPREFIX or /)."""
    import portage.const

    return os.environ.get("PORTAGE_CONFIGROOT") or portage.const.EPREFIX or "/"


def portage_pkgdir(*, config_root: str | None = None) -> Path:
    """Portage's ``PKGDIR``: where this host's ``emerge --buildpkg`` writes binpkgs."""
    pkgdir = _open_portage(config_root).settings.get("PKGDIR", "").strip()
    if not pkgdir:
        raise HostError("Portage's configuration sets no PKGDIR", hint="pass --pkgdir DIR")
    return Path(pkgdir)


_MD5_HEX = re.compile(r"[0-9a-f]{32}")


def installed_binaries(*, config_root: str | None = None) -> dict[str, str]:
    """CPV -> MD5 (hex) of the binpkg each package installed from a binary was merged from.

    Portage writes ``BINPKGMD5`` into the installed-packages database when it
    merges a binpkg (the ``MD5`` its binhost listed, else the file's own);
    packages built here have none.
    """
    vardb = _open_portage(config_root).vardb
    found: dict[str, str] = {}
    for cpv in vardb.cpv_all():
        try:
            text = Path(vardb.getpath(cpv, filename="BINPKGMD5")).read_text().strip()
        except OSError:
            continue
        if _MD5_HEX.fullmatch(text):
            found[str(cpv)] = text
    return found
