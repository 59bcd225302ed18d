"""SIZE, SHA256 and the MD5/SHA1 that Portage's binhost index carries, hashed in parallel.

The three digests of a large binpkg cost about half a second of CPU each
way they are taken; :class:`Digester` gives each its own worker thread
(hashlib releases the GIL for buffers over 2 KiB), so they run side by side
and alongside whatever the caller does with the same bytes, e.g. uploading
them.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["Digester", "FileDigests", "RecordedDigests", "hash_file"]

_HEX = re.compile(r"^[0-9a-f]+$")
_LENGTHS = {"sha256": 64, "md5": 32, "sha1": 40}
# Bounded so a fast reader cannot pile the file up in memory ahead of the hashers.
_QUEUE_CHUNKS = 16
READ_CHUNK = 1 << 20
"""The read size that keeps the per-chunk overhead negligible (1 MiB)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FileDigests:
    """The size of a file and its lowercase hex SHA256, MD5 and SHA1."""

    size: int
    sha256: str
    md5: str
    sha1: str

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"size must be a non-negative int, got {self.size!r}")
        for name, length in _LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) != length or not _HEX.match(value):
                raise ValueError(f"{name} must be {length} lowercase hex digits, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedDigests:
    """The MD5 and SHA1 of a file as Portage recorded them (lowercase hex), not hashed here.

    Taken from the builder's own ``PKGDIR/Packages`` for a file its entry
    still describes (``schema/share.md`` §4); the SHA256 is always hashed.
    """

    md5: str
    sha1: str

    def __post_init__(self) -> None:
        for name in ("md5", "sha1"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) != _LENGTHS[name] or not _HEX.match(value):
                raise ValueError(f"{name} must be {_LENGTHS[name]} lowercase hex digits")


def _new_hashes(recorded: RecordedDigests | None) -> dict[str, Any]:
    hashes: dict[str, Any] = {"sha256": hashlib.sha256()}
    if recorded is None:
        # Portage's index checks these two; they are not used for security here.
        hashes["md5"] = hashlib.md5(usedforsecurity=False)
        hashes["sha1"] = hashlib.sha1(usedforsecurity=False)
    return hashes


class Digester:
    """Feeds the same chunks to SHA256, MD5 and SHA1, each hashed in its own thread.

    ``update`` hands a chunk over and returns (it blocks only when the
    hashers are 16 chunks behind); :meth:`finish` waits for them and returns
    the digests. Use as a context manager so the threads end on errors too.
    With ``recorded``, only SHA256 is hashed and MD5/SHA1 are those given.
    """

    def __init__(self, recorded: RecordedDigests | None = None) -> None:
        self._recorded = recorded
        self._hashes = _new_hashes(recorded)
        self._queues: dict[str, queue.Queue[bytes | None]] = {
            name: queue.Queue(maxsize=_QUEUE_CHUNKS) for name in self._hashes
        }
        self._threads = [
            threading.Thread(target=self._work, args=(name,), name=f"ipfsbin-{name}", daemon=True)
            for name in self._hashes
        ]
        self._size = 0
        self._closed = False
        for thread in self._threads:
            thread.start()

    def _work(self, name: str) -> None:
        digest, chunks = self._hashes[name], self._queues[name]
        while (chunk := chunks.get()) is not None:
            digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        """Hash ``chunk`` (an immutable ``bytes``: the threads read it later)."""
        if self._closed:
            raise RuntimeError("Digester.update after finish or close")
        if not chunk:
            return
        self._size += len(chunk)
        for chunks in self._queues.values():
            chunks.put(chunk)

    def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for chunks in self._queues.values():
            chunks.put(None)
        for thread in self._threads:
            thread.join()

    def finish(self) -> FileDigests:
        """Wait for the hashers; the digests of everything given to :meth:`update`."""
        self._stop()
        recorded = self._recorded
        return FileDigests(
            size=self._size,
            sha256=self._hashes["sha256"].hexdigest(),
            md5=recorded.md5 if recorded is not None else self._hashes["md5"].hexdigest(),
            sha1=recorded.sha1 if recorded is not None else self._hashes["sha1"].hexdigest(),
        )

    def close(self) -> None:
        """Stop the threads without a result (idempotent)."""
        self._stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def hash_file(path: Path, recorded: RecordedDigests | None = None) -> FileDigests:
    """The digests of the file at ``path`` (``OSError`` when it cannot be read).

    With ``recorded``, only SHA256 is hashed (see :class:`Digester`).
    """
    with open(path, "rb") as handle, Digester(recorded) as digester:
        while chunk := handle.read(READ_CHUNK):
            digester.update(chunk)
        return digester.finish()
