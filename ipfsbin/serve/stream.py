"""Binpkg bytes checked against the signed manifest while they stream to Portage.

:func:`verified_range` passes on the requested bytes of a file and feeds
*all* of it to the manifest's own check (a range is read to the end of the
file to be checked): :class:`~ipfsbin.manifest.BinpkgVerifier` compares
the size and the sha256 (the shim leaves SHA-1 and MD5 to Portage). The
piece that completes the requested bytes is held back until that check
passes. On a mismatch, or when the source fails, it raises instead of
sending that piece, so the HTTP connection is cut short of its
Content-Length and no complete bad file reaches Portage.

:func:`read_ahead` runs that reading and checking in a thread of its own,
a few pieces ahead of the sending, so that reading from Kubo and hashing
overlap with the event loop writing to the socket. Memory stays at a few
pieces per download.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, cast

from ipfsbin.manifest import BinpkgVerifier

__all__ = ["ByteRange", "Workers", "parse_range", "read_ahead", "verified_range"]

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
    when the file is not the manifest's. Every other piece goes out as soon
    as it is read: only the one holding the range's last byte waits for the
    whole file's check, so a download never holds more than that one piece.
    """
    size = verifier.manifest.size
    start, end = (0, size - 1) if want is None else (want.start, want.end)
    pos = 0
    held: bytes | None = None
    for chunk in chunks:
        verifier.update(chunk)
        lo, hi = max(start - pos, 0), min(end + 1 - pos, len(chunk))
        pos += len(chunk)
        if lo >= hi:
            continue
        piece = chunk if (lo, hi) == (0, len(chunk)) else chunk[lo:hi]
        if pos > end:
            held = piece
        else:
            yield piece
    verifier.finish()
    if held is not None:
        yield held


_DONE: Final = object()


class Workers:
    """Threads for read-ahead jobs, as many as jobs run at once, kept ``idle`` seconds after.

    A new thread per download cost the event loop ``Thread.start``'s
    handshake (the loop waits until the thread runs), on a 1 MB download of
    2-3 ms; a kept thread takes the next job from a queue (median 1 MB rate
    at load 1.7: 0.32 against 0.24 GB/s, best of 8 alike, ``fetch.py``'s
    files). A job never waits for a busy thread (a download holds its
    thread while its client reads), so a job finding no idle thread starts
    one. A waiting thread holds nothing of its last job.
    """

    def __init__(self, idle: float = 30.0) -> None:
        self.idle = idle
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._waiting = 0
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in a kept thread, or a new one when none is free; ``job`` must not raise."""
        with self._lock:
            if self._waiting:
                self._waiting -= 1
                self._jobs.put(job)
                return
        # in a list the thread empties: a Thread keeps its args until its target returns
        threading.Thread(
            target=self._work, args=([job],), name="ipfsbin-read-ahead", daemon=True
        ).start()

    def _work(self, first: list[Callable[[], None]]) -> None:
        job: Callable[[], None] | None = first.pop()
        while job is not None:
            job()
            # dropped before waiting: a finished download's pieces are not kept alive with it
            job = None
            job = self._next()

    def _next(self) -> Callable[[], None] | None:
        """The next job, or None after ``idle`` seconds without one (the thread then ends)."""
        with self._lock:
            self._waiting += 1
        try:
            return self._jobs.get(timeout=self.idle)
        except queue.Empty:
            with self._lock:
                # a job put for a waiting thread after this one timed out is still this one's
                try:
                    return self._jobs.get_nowait()
                except queue.Empty:
                    self._waiting -= 1
                    return None


_WORKERS: Final = Workers()


async def read_ahead(
    pieces: Iterator[bytes], depth: int = 2, workers: Workers = _WORKERS
) -> AsyncGenerator[bytes, None]:
    """``pieces`` as they come, produced by a thread while the loop sends.

    At most ``depth`` pieces are held at once: the one being read, those
    waiting for the loop and the one being sent.

    The thread reads and hashes (both release the GIL) while the event loop
    sends; each piece reaches the loop with one ``call_soon_threadsafe``
    (handing every piece through a worker of the loop's thread pool cost
    two thread switches and most of the shim's Python time). What
    ``pieces`` yields, and when it raises, is unchanged: an exception it
    raises is raised here after the pieces before it. Closing this iterator
    (the client went away) stops the thread at its next piece. The thread is
    one of ``workers``'.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def hand(item: object) -> None:
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is waiting for the piece
            stop.set()

    def produce() -> None:
        item: object = _DONE
        try:
            while True:
                # the room is taken before the read, so the piece being read counts too
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                piece = next(pieces, None)
                if piece is None:
                    break
                hand(piece)
        except BaseException as exc:  # handed to the consumer, raised there
            item = exc
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        hand(item)

    workers.run(produce)
    try:
        while True:
            item = await ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
            room.release()
    finally:
        stop.set()
        room.release()
