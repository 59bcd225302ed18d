"""Reading Gentoo binary packages (GPKG and legacy XPAK) into ipfsbin's own values.

The only part of ipfsbin that imports ``portage``; everything it returns is a
frozen ipfsbin dataclass.
"""

from __future__ import annotations

from ipfsbin.binpkg.elf import NO_COMMENT, NO_ELF, Compiler, CompilerReport
from ipfsbin.binpkg.reader import BinpkgFormat, BinpkgInfo, read_binpkg

__all__ = [
    "NO_COMMENT",
    "NO_ELF",
    "BinpkgFormat",
    "BinpkgInfo",
    "Compiler",
    "CompilerReport",
    "read_binpkg",
]
