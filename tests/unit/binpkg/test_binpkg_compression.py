"""The in-process image decompressors read what the standard library's readers read."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import sys
from collections.abc import Callable

import pytest

from ipfsbin.binpkg import _compression

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

_PAYLOAD = os.urandom(200_000) + b"text " * 60_000

_CASES: dict[str, tuple[Callable[[bytes], bytes], Callable[[io.BytesIO], io.BufferedIOBase]]] = {
    "zstd": (zstd.compress, lambda f: zstd.ZstdFile(f)),
    "xz": (lzma.compress, lambda f: lzma.LZMAFile(f)),
    "bzip2": (bz2.compress, lambda f: bz2.BZ2File(f)),
}


def _read_all(stream: io.BufferedIOBase) -> bytes:
    chunks = []
    while chunk := stream.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_concatenated_streams_and_trailing_bytes_read_as_the_library_reads_them(
    name: str,
) -> None:
    compress, library = _CASES[name]
    for data in (
        compress(_PAYLOAD),
        compress(_PAYLOAD[:1000]) + compress(_PAYLOAD[1000:]),
        compress(_PAYLOAD) + b"trailing garbage",
    ):
        try:
            expected: bytes | type[Exception] = _read_all(library(io.BytesIO(data)))
        except _compression.ERRORS as exc:
            expected = type(exc)
        try:
            got: bytes | type[Exception] = _read_all(_compression.OPEN[name](io.BytesIO(data)))
        except _compression.ERRORS as exc:
            got = type(exc)
        assert got == expected


@pytest.mark.parametrize("name", sorted(_CASES))
def test_a_stream_cut_short_fails_as_with_the_library(name: str) -> None:
    compress, library = _CASES[name]
    cut = compress(_PAYLOAD)[:-100]
    with pytest.raises(_compression.ERRORS):
        _read_all(library(io.BytesIO(cut)))
    with pytest.raises(_compression.ERRORS):
        _read_all(_compression.OPEN[name](io.BytesIO(cut)))
