"""Plain tar listings read fast: the outer container of a GPKG and its metadata part.

Python's ``tarfile`` spends tens of microseconds on each header and on
opening an archive; a GPKG's container and metadata part are a handful and
a few dozen plain ustar headers, read several times per package. This
reader takes only the simplest case: ustar or GNU headers (``ustar\\0``/
``ustar ``) with a valid checksum, an empty ``prefix`` field, octal numbers,
regular files and directories, data inside the archive, ended by a zero
block or by the end of the data at a block boundary. For anything else
(pax or GNU long-name headers, links, base-256 sizes, a bad checksum, a cut
archive) it returns None and the caller reads the archive with ``tarfile``,
whose verdict stands; on what it accepts it gives the names, sizes and
offsets ``tarfile`` gives.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["Member", "list_file", "list_bytes"]

BLOCK = 512
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\x00")
_DIRECTORY = b"5"


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    offset: int
    """Where the member's data starts in the archive."""
    size: int
    mode: int
    is_file: bool


def _octal(field: bytes) -> int | None:
    text = field.split(b"\x00", 1)[0].strip()
    if text.translate(None, b"01234567"):
        return None
    return int(text, 8) if text else 0


def _header(block: bytes, offset: int) -> Member | None:
    if block[257:263] not in (b"ustar\x00", b"ustar "):
        return None
    stored = _octal(block[148:156])
    if stored is None:
        return None
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    if stored != unsigned:
        return None
    kind = block[156:157]
    if (kind not in _REGULAR and kind != _DIRECTORY) or block[345:500].strip(b"\x00"):
        return None
    size, mode = _octal(block[124:136]), _octal(block[100:108])
    if size is None or mode is None:
        return None
    name = block[:100].split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
    if kind in _REGULAR and name.endswith("/"):
        return None
    if kind == _DIRECTORY:
        name = name.rstrip("/")
    return Member(name, offset + BLOCK, size, mode, kind in _REGULAR)


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def list_bytes(data: bytes, max_members: int) -> list[Member] | None:
    """The members of the tar ``data``, or None to ask ``tarfile``."""
    return list_file(io.BytesIO(data), len(data), max_members)


def list_file(handle: BinaryIO, file_size: int, max_members: int) -> list[Member] | None:
    """The members of the tar file open as ``handle`` (``file_size`` bytes), or None."""
    members: list[Member] = []
    offset = 0
    while offset < file_size:
        handle.seek(offset)
        block = handle.read(BLOCK)
        if block == _ZERO:
            return members or None
        if len(block) < BLOCK or len(members) >= max_members:
            return None
        member = _header(block, offset)
        if member is None:
            return None
        members.append(member)
        offset = member.offset + _blocks(member.size)
    return members if members and offset == file_size else None
