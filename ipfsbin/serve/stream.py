"""Binpkg bytes checked against the signed manifest while they stream to Portage.

:func:`verified_range` passes on the requested bytes of a file and feeds
*all* of it to the manifest's own check (a range is read to the end of the
file to be checked): :class:`~ipfsbin.manifest.BinpkgVerifier` compares
the size and the sha256 (the shim leaves SHA-1 and MD5 to Portage). The
last piece it would send is held back until that check passes. On a
mismatch, or when the source fails, it raises instead of sending that
piece, so the HTTP connection is cut short of its Content-Length and no
complete bad file reaches Portage.

:func:`read_ahead` runs that reading and checking in a thread of its own,
a few pieces ahead of the sending, so that reading from Kubo and hashing
overlap with writing to the socket. Memory stays at a few chunks per
download.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, cast

from ipfsbin.manifest import BinpkgVerifier

__all__ = ["ByteRange", "parse_range", "read_ahead", "verified_range"]

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
    chunks: Iterable[bytes], verifier: BinpkgVerifier, want: ByteRange | None = None
) -> Iterator[bytes]:
    """The bytes of ``want`` (default: all) from ``chunks``, which must be the whole file.

    ``verifier`` (the manifest's own streaming check) sees every byte; it
    raises :class:`~ipfsbin.errors.TrustError` before the last piece goes out
    when the file is not the manifest's.
    """
    size = verifier.manifest.size
    start, end = (0, size - 1) if want is None else (want.start, want.end)
    pos = 0
    held: bytes | None = None
    for chunk in chunks:
        verifier.update(chunk)
        lo, hi = max(start - pos, 0), min(end + 1 - pos, len(chunk))
        pos += len(chunk)
        if lo < hi:
            if held is not None:
                yield held
            held = chunk if (lo, hi) == (0, len(chunk)) else chunk[lo:hi]
    verifier.finish()
    if held is not None:
        yield held


_DONE: Final = object()


def read_ahead(pieces: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """``pieces`` as they come, produced by a thread up to ``depth`` pieces ahead.

    What ``pieces`` yields, and when it raises, is unchanged: an exception
    it raises is raised here after the pieces before it. Closing this
    iterator (the client went away) stops the thread at its next piece.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for piece in pieces:
                if not put(piece):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="ipfsbin-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
    finally:
        stop.set()
