"""A GPKG's metadata part read the way Portage reads it, in this process, without verifying it.

Portage's ``gpkg.get_metadata`` first verifies the container and the
metadata part against the Manifest (building a checksum helper, and with it
Portage's whole environment, per part), then pipes the part through an
external decompressor. For a caller that runs Portage's full verification
of the same file afterwards (:func:`ipfsbin.binpkg.check_binpkg`, which
checks every part, the metadata part included, under the same file
identity) the first check is done twice and the process start is pure cost:
here the container is opened once, the part is chosen by Portage's own
rule (the first member whose name Portage parses as ``metadata.tar`` plus a
compression suffix), decompressed in-process for the compressions that have
a library here (:mod:`._compression`), and its members taken as Portage takes them (regular files
only, under ``metadata/``). See ``schema/share.md`` §4 for why sharing may
read metadata this way.

:func:`read_metadata_part` returns None whenever it would have to decide
something Portage decides differently (another compression, anything
malformed): the caller then asks Portage, whose verdict and error message
are the ones the user sees.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Final, Protocol, TypeVar

from ipfsbin.binpkg import _compression, _portage, _ustar

__all__ = ["read_metadata_part"]


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_Named = TypeVar("_Named", bound=_HasName)

_MARKER: Final = "gpkg-1"
_PREFIX: Final = "metadata/"
_MAX_MEMBERS: Final = 64
_MAX_METADATA_FILES: Final = 4096
# Decompression errors: each means "let Portage say what is wrong".
_BAD: Final = (tarfile.TarError, *_compression.ERRORS)


def read_metadata_part(path: Path) -> dict[str, bytes] | None:
    """The metadata files of the GPKG at ``path`` (name → bytes), or None to ask Portage."""
    try:
        with path.open("rb") as handle:
            listed = _ustar.list_file(handle, os.fstat(handle.fileno()).st_size, _MAX_MEMBERS)
            if listed is not None:
                return _from_listing(handle, listed)
        return _with_tarfile(path)
    except _BAD:
        return None


def _from_listing(handle: BinaryIO, members: list[_ustar.Member]) -> dict[str, bytes] | None:
    """:func:`_with_tarfile` over a container :mod:`._ustar` listed."""
    part = _metadata_member(members)
    if part is None:
        return None
    member, compression = part
    if not member.is_file:
        return None
    handle.seek(member.offset)
    raw = handle.read(member.size)
    if len(raw) != member.size:
        return None
    data = _decompressed(raw, compression)
    if data is None:
        return None
    entries = _ustar.list_bytes(data, _MAX_METADATA_FILES)
    if entries is None:
        return _metadata_files(data)
    files: dict[str, bytes] = {}
    for entry in entries:
        if not entry.is_file or not entry.name.startswith(_PREFIX):
            return None
        files[entry.name[len(_PREFIX) :]] = data[entry.offset : entry.offset + entry.size]
    return files


def _decompressed(raw: bytes, compression: str | None) -> bytes | None:
    if compression is None:
        return raw
    if compression in _compression.DECOMPRESS:
        return _compression.DECOMPRESS[compression](raw)
    return None


def _with_tarfile(path: Path) -> dict[str, bytes] | None:
    with tarfile.open(path, mode="r:") as container:
        members = []
        for member in container:
            members.append(member)
            if len(members) > _MAX_MEMBERS:
                return None
        part = _metadata_member(members)
        if part is None:
            return None
        found, compression = part
        handle = container.extractfile(found)
        if handle is None:
            return None
        data = _decompressed(handle.read(), compression)
        if data is None:
            return None
    return _metadata_files(data)


def _metadata_files(data: bytes) -> dict[str, bytes] | None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as metadata:
        files: dict[str, bytes] = {}
        for entry in metadata.getmembers():
            if not entry.isreg() or not entry.name.startswith(_PREFIX):
                return None
            body = metadata.extractfile(entry)
            if body is None:
                return None
            files[entry.name[len(_PREFIX) :]] = body.read()
        return files


def _metadata_member(members: Sequence[_Named]) -> tuple[_Named, str | None] | None:
    """Portage's ``_get_inner_tarinfo(container, "metadata")``: the first that parses so.

    None also for a container without the gpkg-1 marker.
    """
    if _MARKER not in (posixpath.basename(m.name) for m in members):
        return None
    for member in members:
        parsed = _portage.gpkg_part(member.name)
        if parsed is not None and parsed[0] == "metadata":
            return member, parsed[1]
    return None
