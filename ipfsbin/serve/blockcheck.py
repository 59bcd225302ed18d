"""A binpkg's UnixFS blocks checked one by one against the CIDs that name them.

The repo path of the shim (``schema/binhost.md``, "From the repo's block
files, block by block"): the walk starts at the manifest's signed
``binpkg`` CID; every block read is hashed against the CID its checked
parent names before any byte of it is given out, the root's ``filesize``
must be the manifest's size and the walk may not give more bytes than
that. While the download's own thread reads and hashes one raw leaf, a
helper thread (one per further core; hashlib lets go of the GIL) hashes
the one before it, so one download's hashing uses every core and no part
waits for a pass over the whole file.

:func:`same_start` is the other half: when the repo lacks a block and a
plain stream of the whole file takes over, it compares that stream's first
bytes with the parts already given out, by their SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec.car import MAX_BLOCK_BYTES
from ipfsbin.codec.cid import CID, IDENTITY, RAW, SHA2_256
from ipfsbin.codec.unixfs import decode_file_node
from ipfsbin.errors import CodecError, TrustError
from ipfsbin.manifest import Manifest

__all__ = ["MAX_AHEAD", "Checked", "Missing", "checked_blocks", "read_leaf", "same_start"]

MAX_AHEAD: Final = 2
"""Most blocks read and hashed ahead of the one given out, for one download."""
HELPERS: Final = max(1, (os.cpu_count() or 2) - 1)
"""Threads hashing for the downloads' own threads: with them, one download's blocks are
hashed on every core."""


class Missing(Exception):
    """The repo lacks a block of the file (or cannot read it): the rest comes from elsewhere."""


@dataclass(frozen=True, slots=True)
class Checked:
    """Who asked for which file: what a refusal names."""

    manifest: Manifest
    manifest_cid: CID

    def refuse(self, why: str) -> TrustError:
        manifest = self.manifest
        return TrustError(
            f"the bytes behind binpkg {manifest.binpkg} do not match manifest "
            f"{self.manifest_cid} of {manifest.cpv}: {why}",
            hint="the block files in the repo are damaged, or the manifest does not "
            "describe its file",
        )


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK: Final = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL  # noqa: PLW0603 - one pool per process, made on first use
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(HELPERS, thread_name_prefix="ipfsbin-hash")
        return _POOL


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def read_leaf(path: str) -> bytes:
    """A block file's bytes, whole; :class:`Missing` when it is absent or unreadable.

    A file larger than any block is read only as far as one byte past the
    largest block: it cannot hash to its CID anyway.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise Missing(str(exc)) from exc
    try:
        want = min(os.fstat(fd).st_size, MAX_BLOCK_BYTES) + 1
        parts = []
        while want > 0 and (piece := os.read(fd, want)):
            parts.append(piece)
            want -= len(piece)
    except OSError as exc:
        raise Missing(str(exc)) from exc
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


_Part = tuple[bytes, "Future[bytes] | bytes", CID | None]
"""A part's bytes, its SHA-256 (or the hashing of it), and the leaf CID it must match."""


def checked_blocks(
    checked: Checked,
    node: Callable[[CID], bytes],
    leaf: Callable[[CID], bytes],
    *,
    end: int,
    ahead: Callable[[], int],
    given: list[tuple[int, bytes]],
) -> Iterator[bytes]:
    """The file's parts in order, from its first byte until at least ``end`` bytes were given.

    ``node`` and ``leaf`` read a dag-pb node's and a raw leaf's block
    (:class:`Missing` when the repo lacks it). Each part is given once its
    block and every block before it hashed to the CIDs naming them; the
    (length, SHA-256) of each is appended to ``given`` just before. Up to
    ``ahead()`` leaves are read and hashed on the pool ahead of the part
    given (1: hashed here, no pool). With ``end`` at the manifest's size the
    whole file is walked, and its last part waits until the walk is over
    and gave exactly that many bytes. :class:`~ipfsbin.errors.TrustError` for
    a block that does not hash to its CID, a root whose ``filesize`` is not
    the manifest's size, checked blocks that are no UnixFS file, or too many
    or too few bytes; :class:`Missing` after the parts before the lacking
    block.
    """
    size = checked.manifest.size
    whole = end >= size
    window: deque[_Part] = deque()
    read = 0
    pending = [checked.manifest.binpkg]
    root = True
    try:
        while pending and (whole or read < end):
            cid = pending.pop()
            depth = ahead()
            if cid.codec == RAW and cid.hash_code != IDENTITY:
                data = leaf(cid)
                # a helper hashes this block while this thread reads and hashes the next:
                # one hand-over for every two blocks, and no thread left waiting (the last
                # block needed has no next, so it is hashed here)
                digest: Future[bytes] | bytes = (
                    _pool().submit(_sha256, data)
                    if depth > 1
                    and pending
                    and read + len(data) < end
                    and _hashing(window) < HELPERS
                    else _sha256(data)
                )
                window.append((data, digest, cid))
            else:
                data = cid.digest if cid.hash_code == IDENTITY else node(cid)
                if not _verify(cid, data):
                    raise checked.refuse(f"block {cid} at byte {read} does not hash to it")
                try:
                    file = decode_file_node(cid, data)
                except CodecError as exc:
                    raise checked.refuse(f"block {cid} is no UnixFS file: {exc.message}") from exc
                if root and file.filesize != size:
                    raise checked.refuse(f"the file {cid} states {file.filesize} bytes")
                pending.extend(reversed(file.children))
                data = file.data
                if data:
                    window.append((data, _sha256(data), None))
            root = False
            read += len(data)
            if read > size:
                _check_all(checked, window, given)
                raise checked.refuse(f"the walk gives more than {size} bytes")
            if not pending or read >= end:
                break  # the last part waits for the checks below
            while len(window) >= depth or (window and _done(window[0][1])):
                yield _give(checked, window.popleft(), given)
        _check_all(checked, window, given)
        if read < min(end, size) or (whole and read != size):
            raise checked.refuse(f"the walk gives {read} bytes, not {size}")
        while window:
            yield _give(checked, window.popleft(), given)
    except Missing:
        while window:
            yield _give(checked, window.popleft(), given)
        raise
    finally:
        # a download given up (the client went away, a bad block): its hashing is not waited for
        for _, digest, _ in window:
            if not isinstance(digest, bytes):
                digest.cancel()


def _verify(cid: CID, data: bytes) -> bool:
    try:
        return cid.verify(data)
    except CodecError:  # a hash function this reader does not know: cannot be checked
        return False


def _done(digest: Future[bytes] | bytes) -> bool:
    return isinstance(digest, bytes) or digest.done()


def _hashing(window: deque[_Part]) -> int:
    return sum(not _done(digest) for _, digest, _ in window)


def _check(checked: Checked, part: _Part, given: list[tuple[int, bytes]], before: int = 0) -> bytes:
    """The part's SHA-256, once its block was found to hash to its CID.

    ``before``: bytes of parts not given yet ahead of this one (for the message).
    """
    data, hashing, cid = part
    digest = hashing if isinstance(hashing, bytes) else hashing.result()
    if cid is not None and (
        digest != cid.digest if cid.hash_code == SHA2_256 else not _verify(cid, data)
    ):
        offset = sum(length for length, _ in given) + before
        raise checked.refuse(f"block {cid} at byte {offset} does not hash to it")
    return digest


def _check_all(checked: Checked, window: deque[_Part], given: list[tuple[int, bytes]]) -> None:
    """Every part not given yet checked (a bad block is named before a wrong size)."""
    before = 0
    for part in window:
        _check(checked, part, given, before)
        before += len(part[0])


def _give(checked: Checked, part: _Part, given: list[tuple[int, bytes]]) -> bytes:
    given.append((len(part[0]), _check(checked, part, given)))
    return part[0]


def same_start(
    chunks: Iterable[bytes], given: list[tuple[int, bytes]], checked: Checked
) -> Iterator[bytes]:
    """``chunks`` unchanged, once their first bytes were found to be the parts ``given``.

    Each part's length of bytes must have that part's SHA-256; a difference
    is a :class:`~ipfsbin.errors.TrustError` raised before any chunk past
    the part is passed on.
    """
    parts = iter(given)
    part = next(parts, None)
    digest = hashlib.sha256()
    filled = offset = 0
    for chunk in chunks:
        view = memoryview(chunk)
        at = 0
        while part is not None and at < len(view):
            length, wanted = part
            take = min(length - filled, len(view) - at)
            digest.update(view[at : at + take])
            at += take
            filled += take
            if filled == length:
                if digest.digest() != wanted:
                    raise checked.refuse(
                        f"the {length} bytes at byte {offset} differ from the repo's checked "
                        "block there"
                    )
                offset += length
                digest = hashlib.sha256()
                filled = 0
                part = next(parts, None)
        yield chunk
