"""What is installed here, who depends on it, and the Portage settings that decide binaries.

Read through the ``portage`` library, like :mod:`ipfsbin.host.profile`:
the installed-packages database answers what ``weather`` counts
(:func:`read_installed`), and Portage's own settings and ``binrepos.conf``
loader answer what ``doctor`` checks (:func:`read_binary_settings`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ipfsbin.errors import HostError
from ipfsbin.host.profile import _open_portage

__all__ = [
    "BinaryRepo",
    "BinarySettings",
    "InstalledSet",
    "read_binary_settings",
    "read_installed",
]

_DEP_KEYS = ("RDEPEND", "DEPEND", "BDEPEND", "PDEPEND")


@dataclass(frozen=True, kw_only=True)
class InstalledSet:
    """The installed packages (CPVs), the world file, and reverse-dependency counts."""

    cpvs: tuple[str, ...]
    world: tuple[str, ...]
    dependents: Mapping[str, int]
    """category/package -> how many other installed packages depend on it."""
    world_cpvs: tuple[str, ...]
    """The installed CPVs the world atoms select."""

    def matching(self, atom: str) -> tuple[str, ...]:
        """Installed CPVs whose ``category/package`` is that of ``atom`` (cat/pkg or =cpv)."""
        from portage.dep import Atom
        from portage.exception import InvalidAtom
        from portage.versions import cpv_getkey

        try:
            parsed = Atom(atom)
        except InvalidAtom as exc:
            raise ValueError(f"{atom!r} is not a Portage atom") from exc
        if parsed.operator is not None:
            return tuple(c for c in self.cpvs if c == parsed.cpv)
        return tuple(c for c in self.cpvs if cpv_getkey(c) == parsed.cp)


@dataclass(frozen=True, kw_only=True)
class BinaryRepo:
    name: str
    sync_uri: str


@dataclass(frozen=True, kw_only=True)
class BinarySettings:
    """What decides whether emerge uses binaries at all."""

    config_root: str
    """Where make.conf and binrepos.conf live (``PORTAGE_CONFIGROOT``)."""
    features: frozenset[str]
    emerge_default_opts: tuple[str, ...]
    binrepos: tuple[BinaryRepo, ...]

    @property
    def make_conf(self) -> str:
        return os.path.join(self.config_root, "etc", "portage", "make.conf")


def _dependency_cps(vardb: object, cpv: str) -> set[str]:
    from portage.dep import Atom, use_reduce
    from portage.exception import PortageException

    found: set[str] = set()
    aux_get = getattr(vardb, "aux_get")  # noqa: B009 - vardbapi is untyped
    for text in aux_get(cpv, list(_DEP_KEYS)):
        try:
            # the database keeps dependencies with USE already applied
            tokens = use_reduce(text, flat=True, matchall=True)
        except PortageException:
            continue
        for token in tokens:
            if isinstance(token, str) and token not in ("||",) and not token.startswith("!"):
                try:
                    found.add(Atom(token).cp)
                except PortageException:
                    continue
    return found


def read_installed(*, config_root: str | None = None) -> InstalledSet:
    """The installed set, through Portage's installed-packages database."""
    from portage.const import WORLD_FILE
    from portage.util import grabfile
    from portage.versions import cpv_getkey

    handle = _open_portage(config_root)
    vardb = handle.vardb
    try:
        cpvs = tuple(sorted(vardb.cpv_all()))
        counts: Counter[str] = Counter()
        for cpv in cpvs:
            own = cpv_getkey(cpv)
            for cp in _dependency_cps(vardb, cpv) - {own}:
                counts[cp] += 1
        world = tuple(grabfile(os.path.join(handle.settings["EROOT"], WORLD_FILE)))
        world_cpvs = tuple(sorted({c for atom in world for c in vardb.match(atom)}))
    except Exception as exc:  # portage raises many unrelated types for a broken database
        raise HostError(
            f"cannot read the installed packages: {type(exc).__name__}: {exc}",
            hint="check that `emerge --info` and `qlist -I` work",
        ) from exc
    return InstalledSet(
        cpvs=cpvs,
        world=world,
        dependents=MappingProxyType(dict(counts)),
        world_cpvs=world_cpvs,
    )


def read_binary_settings(*, config_root: str | None = None) -> BinarySettings:
    """FEATURES, EMERGE_DEFAULT_OPTS and the binrepos.conf entries, as Portage reads them."""
    from portage.binrepo.config import BinRepoConfigLoader
    from portage.const import BINREPOS_CONF_FILE

    handle = _open_portage(config_root)
    settings = handle.settings
    try:
        # the file list Portage's binary tree reads (without the global defaults)
        path = os.path.join(settings["PORTAGE_CONFIGROOT"], BINREPOS_CONF_FILE)
        loader = BinRepoConfigLoader([path], settings)
        repos = tuple(
            BinaryRepo(name=name, sync_uri=str(repo.sync_uri or ""))
            for name, repo in loader.items()
        )
    except Exception as exc:
        raise HostError(
            f"Portage cannot read binrepos.conf: {type(exc).__name__}: {exc}",
            hint="check the files under etc/portage/binrepos.conf",
        ) from exc
    return BinarySettings(
        config_root=settings["PORTAGE_CONFIGROOT"],
        features=frozenset(settings.features),
        emerge_default_opts=tuple(settings.get("EMERGE_DEFAULT_OPTS", "").split()),
        binrepos=repos,
    )
