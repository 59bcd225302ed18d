"""This host's own builds: the binpkgs in its PKGDIR, described as a builder would.

``ipfsbin challenge`` compares them with what builders attested for the same
descriptor, so each is read, hashed and normalized exactly as
:func:`ipfsbin.builder.publish.publish_binpkgs` would before publishing it
(the compiler named by the ELF files, the host's facts for the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin.binpkg import read_binpkg, read_binpkg_metadata
from ipfsbin.builder.publish import _describe  # the one normalization publishing uses
from ipfsbin.errors import BinpkgError, DescriptorError
from ipfsbin.host.facts import HostFacts
from ipfsbin.index.keys import index_key

__all__ = ["LocalBuild", "describe_binpkg", "find_binpkgs", "local_builds"]

_SUFFIXES: Final = (".gpkg.tar", ".xpak", ".tbz2")


@dataclass(frozen=True, kw_only=True)
class LocalBuild:
    """A build this host made or installed: its index key and the sha256 of its bytes."""

    path: Path | None
    """The binpkg in PKGDIR; None for a package installed from a binary no longer kept."""
    cpv: str
    key: str
    sha256: bytes
    origin: str
    """``built`` (from source here), ``quickpkg``, or ``installed binary``."""


def find_binpkgs(pkgdir: Path) -> Iterator[Path]:
    """Every binpkg under ``pkgdir``, in path order."""
    for path in sorted(pkgdir.rglob("*")):
        if path.is_file() and path.name.endswith(_SUFFIXES):
            yield path


def describe_binpkg(path: Path, host: HostFacts) -> LocalBuild:
    """Read, check and hash ``path``; ``BinpkgError``/``DescriptorError`` when it cannot be."""
    info = read_binpkg(path)
    package = _describe(info, info.compiler, host)
    return LocalBuild(
        path=path,
        cpv=info.cpv,
        key=index_key(package.platform.cid, info.cpv, package.descriptor.cid),
        sha256=bytes.fromhex(info.sha256),
        origin=info.origin,
    )


def local_builds(
    pkgdir: Path, host: HostFacts, *, wanted: Callable[[str], bool] = lambda cpv: True
) -> tuple[list[LocalBuild], list[tuple[Path, str]]]:
    """The binpkgs under ``pkgdir`` whose CPV is ``wanted``, described; and the ones that
    could not be read or described, with the reason."""
    builds: list[LocalBuild] = []
    skipped: list[tuple[Path, str]] = []
    for path in find_binpkgs(pkgdir):
        try:
            if wanted(read_binpkg_metadata(path).cpv):
                builds.append(describe_binpkg(path, host))
        except (BinpkgError, DescriptorError) as exc:
            skipped.append((path, exc.message))
    return builds, skipped
