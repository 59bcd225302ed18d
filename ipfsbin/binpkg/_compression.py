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
from typing import IO, Final, Protocol

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

_INPUT_CHUNK: Final = 1 << 20
"""Compressed bytes taken from the source at a time (the library readers take 8 KiB, and
each of their reads costs a seek and a read of the container member: 70,000 a 600 MB image)."""


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _StreamReader(io.RawIOBase):
    """The standard library's ``DecompressReader`` (behind ``ZstdFile``, ``LZMAFile``,
    ``BZ2File``) for forward reads, taking its input 1 MiB at a time.

    The same rules: concatenated streams are read one after another, trailing
    bytes that are not a stream are ignored, a stream cut short raises ``EOFError``.
    """

    def __init__(
        self,
        source: IO[bytes],
        factory: Callable[[], _Decompressor],
        trailing_error: type[Exception] | tuple[type[Exception], ...],
    ) -> None:
        self._source = source
        self._factory = factory
        self._trailing_error = trailing_error
        self._decompressor: _Decompressor | None = factory()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read(self, size: int) -> bytes:
        if not size or self._decompressor is None:
            return b""
        while True:
            if self._decompressor.eof:
                block = self._decompressor.unused_data or self._source.read(_INPUT_CHUNK)
                if not block:
                    break
                self._decompressor = self._factory()
                try:
                    data = self._decompressor.decompress(block, size)
                except self._trailing_error:
                    break
            else:
                if self._decompressor.needs_input:
                    block = self._source.read(_INPUT_CHUNK)
                    if not block:
                        raise EOFError(
                            "Compressed file ended before the end-of-stream marker was reached"
                        )
                else:
                    block = b""
                data = self._decompressor.decompress(block, size)
            if data:
                return data
        self._decompressor = None
        return b""


def _buffered(
    factory: Callable[[], _Decompressor],
    trailing_error: type[Exception] | tuple[type[Exception], ...],
) -> Callable[[IO[bytes]], io.BufferedIOBase]:
    def open_stream(source: IO[bytes]) -> io.BufferedIOBase:
        return io.BufferedReader(_StreamReader(source, factory, trailing_error), _INPUT_CHUNK)

    return open_stream


OPEN: Final[dict[str, Callable[[IO[bytes]], io.BufferedIOBase]]] = {
    # ZstdFile ignores no trailing bytes; LZMAFile and BZ2File ignore what is not a stream.
    "zstd": _buffered(lambda: zstd.ZstdDecompressor(options=_ZSTD_OPTIONS), ()),
    "gzip": lambda source: gzip.GzipFile(fileobj=source),
    "bzip2": _buffered(bz2.BZ2Decompressor, OSError),
    "xz": _buffered(lzma.LZMADecompressor, lzma.LZMAError),
}
"""Compression name -> a reader decompressing ``source`` as it is read."""

ERRORS: Final = (OSError, EOFError, ValueError, lzma.LZMAError, zstd.ZstdError)
"""What the decompressors raise on a truncated or corrupt stream."""
