"""Recognising a binary package: GPKG or xpak, from the few bytes that tell them apart."""

from __future__ import annotations

import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Literal

from ipfsbin.binpkg import _portage, _ustar
from ipfsbin.errors import BinpkgError

BinpkgFormat = Literal["gpkg", "xpak"]

HINT_NOT_BINPKG = "give the path of a .gpkg.tar, .xpak or .tbz2 file from a PKGDIR"
HINT_CORRUPT = "the file is truncated or corrupt; rebuild it or fetch it again"
_MAX_CONTAINER_MEMBERS = 64
_XPAK_TRAILER = re.compile(rb"^XPAKSTOP.{4}STOP$", re.DOTALL)


def identify(path: Path) -> tuple[BinpkgFormat, os.stat_result]:
    """The format of the file, and its ``stat`` before anything was read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BinpkgError(f"{path}: no such file", hint=HINT_NOT_BINPKG) from None
    except OSError as exc:
        raise BinpkgError(f"{path}: cannot be read ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise BinpkgError(f"{path}: is a directory, not a binary package", hint=HINT_NOT_BINPKG)
    if not stat.S_ISREG(st.st_mode):
        raise BinpkgError(f"{path}: is not a regular file", hint=HINT_NOT_BINPKG)
    if st.st_size == 0:
        raise BinpkgError(f"{path}: is empty (0 bytes)", hint=HINT_CORRUPT)

    name = path.name
    head, tail = _ends(path, st.st_size)
    # Only a file that ends in an xpak trailer goes to Portage's xpak reader:
    # on anything else it tries every tar compression over the whole file.
    layout = _portage.xpak_layout(path) if _XPAK_TRAILER.match(tail) else None
    if layout is not None:
        if name.endswith(".gpkg.tar"):
            raise BinpkgError(
                f"{path}: is named .gpkg.tar but holds an xpak segment (a legacy binpkg)",
                hint="rename it to .tbz2 or .xpak",
            )
        return "xpak", st
    if name.endswith((".tbz2", ".xpak")):
        raise BinpkgError(
            f"{path}: has no xpak segment (no XPAKSTOP trailer); not a legacy binpkg",
            hint=HINT_CORRUPT,
        )
    if not _is_tar_header(head) or not _is_gpkg_container(path):
        kind = (
            "a tar archive" if _is_tar_header(head) else "neither a tar archive nor an xpak binpkg"
        )
        raise BinpkgError(
            f"{path}: is {kind} without the gpkg-1 marker of a GPKG",
            hint=HINT_NOT_BINPKG,
        )
    return "gpkg", st


def _ends(path: Path, size: int) -> tuple[bytes, bytes]:
    """The first tar block and the last 16 bytes: all that recognising a binpkg reads."""
    try:
        with open(path, "rb") as f:
            head = f.read(tarfile.BLOCKSIZE)
            f.seek(max(0, size - 16))
            return head, f.read(16)
    except OSError as exc:
        raise BinpkgError(f"{path}: cannot be read ({exc.strerror})") from exc


def _is_tar_header(block: bytes) -> bool:
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _is_gpkg_container(path: Path) -> bool:
    """True for a tar holding the gpkg-1 marker; raises for one cut short after it."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            listed = _ustar.list_file(handle, size, _MAX_CONTAINER_MEMBERS)
    except OSError:
        listed = None
    if listed is not None:
        return any(m.name.rpartition("/")[2] == "gpkg-1" for m in listed)
    marker = False
    try:
        with tarfile.open(path, mode="r:") as tar:
            for count, member in enumerate(tar):
                marker = marker or member.name.rpartition("/")[2] == "gpkg-1"
                if count >= _MAX_CONTAINER_MEMBERS:
                    # A GPKG has a handful of parts; reading on (and Portage's
                    # duplicate check, quadratic in the members) would only cost time.
                    raise BinpkgError(
                        f"{path}: is a tar archive of more than {_MAX_CONTAINER_MEMBERS} "
                        "members; a GPKG holds a handful",
                        hint=HINT_NOT_BINPKG,
                    )
    except (tarfile.TarError, OSError, EOFError) as exc:
        if marker:
            raise BinpkgError(
                f"{path}: is a gpkg cut short (the tar ends early: {exc})", hint=HINT_CORRUPT
            ) from exc
        return False
    return marker
