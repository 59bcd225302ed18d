"""Reading Gentoo binary packages (GPKG and legacy XPAK) into ipfsbin's own values.

The only part of ipfsbin that imports ``portage``; everything it returns is a
frozen ipfsbin dataclass. :func:`read_binpkg` reads and checks everything;
:func:`read_binpkg_metadata` is the cheap part alone, and
:func:`check_binpkg` plus a :class:`Digester` the expensive rest, for callers
that overlap it with other work on the same bytes.
"""

from __future__ import annotations

from ipfsbin.binpkg._image import SETUID_PACKAGES
from ipfsbin.binpkg.digests import Digester, FileDigests, hash_file
from ipfsbin.binpkg.elf import NO_COMMENT, NO_ELF, Compiler, CompilerReport
from ipfsbin.binpkg.reader import (
    BinpkgFormat,
    BinpkgInfo,
    BinpkgMetadata,
    BinpkgOrigin,
    FileIdentity,
    check_binpkg,
    read_binpkg,
    read_binpkg_contents,
    read_binpkg_metadata,
    verify_unchanged,
)

__all__ = [
    "NO_COMMENT",
    "NO_ELF",
    "SETUID_PACKAGES",
    "BinpkgFormat",
    "BinpkgInfo",
    "BinpkgMetadata",
    "BinpkgOrigin",
    "Compiler",
    "CompilerReport",
    "Digester",
    "FileDigests",
    "FileIdentity",
    "check_binpkg",
    "hash_file",
    "read_binpkg",
    "read_binpkg_contents",
    "read_binpkg_metadata",
    "verify_unchanged",
]
