"""The decompressors run in this process, for the compressions that have a library here.

Portage pipes every compressed binpkg part through a program (``zstd -d
--long=31``, ``gzip -d``...). A decompressor's output is fixed by the
stream, so a library gives the same bytes without starting a process per
part: zstd through ``backports.zstd`` (Python 3.14's ``compression.zstd``
before 3.14), gzip, bzip2 and xz through the standard library. lz4, lzip
and lzop have no such library here and still go to Portage's programs.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
from collections.abc import Callable
from typing import IO, Final

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

__all__ = ["DECOMPRESS", "ERRORS", "OPEN"]

# Portage runs `zstd -d --long=31`: frames with windows up to 2^31 bytes.
_ZSTD_OPTIONS: Final[dict[int, int]] = {int(zstd.DecompressionParameter.window_log_max): 31}

DECOMPRESS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "zstd": lambda data: zstd.decompress(data, options=_ZSTD_OPTIONS),
    "gzip": gzip.decompress,
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
}
"""Compression name (Portage's) -> decompress a whole part held in memory."""

OPEN: Final[dict[str, Callable[[IO[bytes]], io.BufferedIOBase]]] = {
    "zstd": lambda source: zstd.ZstdFile(source, options=_ZSTD_OPTIONS),
    "gzip": lambda source: gzip.GzipFile(fileobj=source),
    "bzip2": lambda source: bz2.BZ2File(source),
    "xz": lambda source: lzma.LZMAFile(source),
}
"""Compression name -> a reader decompressing ``source`` as it is read."""

ERRORS: Final = (OSError, EOFError, ValueError, lzma.LZMAError, zstd.ZstdError)
"""What the decompressors raise on a truncated or corrupt stream."""
