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
import posixpath
import tarfile
from pathlib import Path
from typing import Final

from ipfsbin.binpkg import _compression, _portage

__all__ = ["read_metadata_part"]

_MARKER: Final = "gpkg-1"
_PREFIX: Final = "metadata/"
_MAX_MEMBERS: Final = 64
# Decompression errors: each means "let Portage say what is wrong".
_BAD: Final = (tarfile.TarError, *_compression.ERRORS)


def read_metadata_part(path: Path) -> dict[str, bytes] | None:
    """The metadata files of the GPKG at ``path`` (name → bytes), or None to ask Portage."""
    try:
        with tarfile.open(path, mode="r:") as container:
            members = []
            for member in container:
                members.append(member)
                if len(members) > _MAX_MEMBERS:
                    return None
            if _MARKER not in (posixpath.basename(m.name) for m in members):
                return None
            part = _metadata_member(members)
            if part is None:
                return None
            member, compression = part
            handle = container.extractfile(member)
            if handle is None:
                return None
            if compression is None:
                data = handle.read()
            elif compression in _compression.DECOMPRESS:
                data = _compression.DECOMPRESS[compression](handle.read())
            else:
                return None
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
    except _BAD:
        return None


def _metadata_member(members: list[tarfile.TarInfo]) -> tuple[tarfile.TarInfo, str | None] | None:
    """Portage's ``_get_inner_tarinfo(container, "metadata")``: the first that parses so."""
    for member in members:
        parsed = _portage.gpkg_part(member.name)
        if parsed is not None and parsed[0] == "metadata":
            return member, parsed[1]
    return None
