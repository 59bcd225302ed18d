"""Binpkg bytes checked against the signed manifest while they stream to Portage.

:func:`verified_range` passes on the requested bytes of a file and hashes
*all* of it (a range is read to the end of the file to be checked); the last
piece it would send is held back until the size and sha256 match the
manifest. On a mismatch, or when the source fails, it raises instead of
sending that piece, so the HTTP connection is cut short of its
Content-Length and no complete bad file reaches Portage. Memory stays at one
chunk per download.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from ipfsbin.errors import BlockMismatchError

__all__ = ["ByteRange", "parse_range", "verified_range"]

_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ByteRange:
    start: int
    end: int
    """Inclusive."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for; None for the whole file; ValueError if unsatisfiable.

    Several ranges in one header are answered with the whole file (allowed by
    RFC 9110; wget never asks for them).
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return ByteRange(start=max(size - length, 0), end=size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError(f"range {header!r} is outside the {size} bytes")
    return ByteRange(start=start, end=end)


def verified_range(
    chunks: Iterable[bytes], *, size: int, sha256: bytes, what: str, want: ByteRange | None = None
) -> Iterator[bytes]:
    """The bytes of ``want`` (default: all) from ``chunks``, which must be the whole file.

    Raises :class:`BlockMismatchError` before the last piece when the file is
    not ``size`` bytes with digest ``sha256``.
    """
    start, end = (0, size - 1) if want is None else (want.start, want.end)
    digest = hashlib.sha256()
    pos = 0
    held: bytes | None = None
    for chunk in chunks:
        digest.update(chunk)
        lo, hi = max(start - pos, 0), min(end + 1 - pos, len(chunk))
        pos += len(chunk)
        if pos > size:
            raise BlockMismatchError(f"{what}: more than the {size} bytes the manifest states")
        if lo < hi:
            if held is not None:
                yield held
            held = chunk if (lo, hi) == (0, len(chunk)) else chunk[lo:hi]
    if pos != size:
        raise BlockMismatchError(f"{what}: {pos} bytes arrived, the manifest states {size}")
    if digest.digest() != sha256:
        raise BlockMismatchError(
            f"{what}: sha256 {digest.hexdigest()} differs from the signed manifest's "
            f"{sha256.hex()}; the download is cut off"
        )
    if held is not None:
        yield held
