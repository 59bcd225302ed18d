"""Manifest and descriptor blocks decoded in worker processes when a build has many to read.

A catalog build from nothing (or from the kept builds) reads up to 10^5
manifest/descriptor pairs, and each pair costs about a tenth of a
millisecond of Python: hashing both blocks against their CIDs, decoding
them strictly (kept blocks: as ``from_checked_block``) and checking the
models. :class:`Decoder` hands that work, in chunks, to a worker process per
core beyond the building thread's, which judges the builds already decoded; the
objects come back pickled. The workers run the very calls
:class:`~ipfsbin.catalog.cache.BuildCache` makes itself, so nothing is
checked less; a pair a worker cannot decode is simply not handed back, and
the cache then reads it as it always did (and refuses it with the same
error).

Which descriptor a manifest names is found in the manifest's bytes without
decoding them, only to know which block to send along; the worker checks
that the manifest it decoded names that very descriptor, or hands back
nothing.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Final

from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import IpfsbinError
from ipfsbin.manifest import Manifest

__all__ = ["CHUNK", "MIN_PAIRS", "WORKERS", "Decoder", "Pair", "Taken", "descriptor_link"]

MIN_PAIRS: Final = 4096
"""Fewer pairs are decoded in the building thread (a worker's start and the pickling cost more)."""
CHUNK: Final = 1024
CHUNK_WAIT_S: Final = 60.0
"""How long the building thread waits for one chunk (a tenth of a second's work) before it
reads every pair not handed back yet itself: a stuck worker must not stop the catalog."""
WORKERS: Final = len(os.sched_getaffinity(0)) - 1
"""One core is the building thread's (it judges while the workers decode): none on one core."""

Pair = tuple[CID, bytes, CID, bytes, bool]
"""Manifest CID and block, descriptor CID and block, and whether they are kept blocks
(proven canonical by an earlier process: decoded as ``from_checked_block``)."""
_Raw = tuple[bytes, bytes, bytes, bytes, bool]
Decoded = tuple[Manifest, Descriptor]
Taken = tuple[Manifest, bytes, Descriptor]
"""A pair handed out: the manifest, its block (kept for the kept-builds file), the descriptor."""


_DESCRIPTOR_KEY: Final = b"\x6adescriptor\xd8\x2a\x58\x25\x00"
"""The key ``descriptor`` and the head of a link to a 36-byte CID, as DAG-CBOR writes them."""


def descriptor_link(block: bytes) -> CID | None:
    """The descriptor a manifest block seems to name, found in its bytes without decoding.

    Only to choose the block to send along (decoding here would cost the
    building thread a tenth of what the worker's whole check costs): the
    worker checks that the manifest names that very descriptor, and a pair
    it does not hand back is read by the cache itself. None when the bytes
    hold no such link (another kind of CID: the cache reads that pair).
    """
    at = block.find(_DESCRIPTOR_KEY)
    if at < 0:
        return None
    start = at + len(_DESCRIPTOR_KEY)
    raw = block[start : start + 36]
    try:
        return CID(raw) if len(raw) == 36 else None
    except IpfsbinError:
        return None


def _decode(chunk: Sequence[_Raw]) -> list[Decoded | None]:
    """In a worker: each pair as ``BuildCache`` would decode it, or None."""
    found: list[Decoded | None] = []
    for manifest_raw, manifest_block, descriptor_raw, descriptor_block, kept in chunk:
        try:
            cid = CID(manifest_raw)
            if kept:
                manifest = Manifest.from_checked_block(cid, manifest_block)
            else:
                manifest = Manifest.from_block(cid, manifest_block)
            if manifest.descriptor.bytes != descriptor_raw:
                found.append(None)
                continue
            if kept:
                descriptor = Descriptor.from_checked_block(manifest.descriptor, descriptor_block)
            else:
                descriptor = Descriptor.from_block(manifest.descriptor, descriptor_block)
        except IpfsbinError:
            found.append(None)
        else:
            found.append((manifest, descriptor))
    return found


class Decoder:
    """Pairs decoded by worker processes, handed out by manifest CID (each once).

    Close it (or use it as a context manager) when the build is done: the
    workers stop and what was not asked for is dropped.
    """

    def __init__(self, pairs: Iterable[Pair], *, workers: int = WORKERS) -> None:
        # fork: a worker starts with every module already imported (spawn and
        # forkserver import them again, 0.5 s, and run the program's main module).
        # The building thread may run beside others (``serve``'s); a worker only
        # decodes, taking no lock another thread of the parent could have held.
        context = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(max_workers=max(workers, 1), mp_context=context)
        # by the CID's bytes: a bytes object keeps its hash, a CID computes it in Python
        self._chunk_of: dict[bytes, int] = {}
        self._manifest_blocks: dict[bytes, bytes] = {}
        self._chunks: list[tuple[list[bytes], Future[list[Decoded | None]]]] = []
        self._ready: dict[bytes, Decoded | None] = {}
        self._stuck = False
        chunk: list[_Raw] = []
        cids: list[bytes] = []
        for manifest_cid, manifest_block, descriptor_cid, descriptor_block, kept in pairs:
            raw = manifest_cid.bytes
            self._chunk_of[raw] = len(self._chunks)
            self._manifest_blocks[raw] = manifest_block
            cids.append(raw)
            chunk.append((raw, manifest_block, descriptor_cid.bytes, descriptor_block, kept))
            if len(chunk) == CHUNK:
                self._submit(cids, chunk)
                chunk, cids = [], []
        if chunk:
            self._submit(cids, chunk)

    def _submit(self, cids: list[bytes], chunk: list[_Raw]) -> None:
        self._chunks.append((cids, self._pool.submit(_decode, chunk)))

    def take(self, manifest: CID) -> Taken | None:
        """The decoded pair of ``manifest`` (waiting for its chunk), or None."""
        raw = manifest.bytes
        at = self._chunk_of.pop(raw, None)
        if at is None:
            return None
        block = self._manifest_blocks.pop(raw)
        if raw not in self._ready:
            cids, future = self._chunks[at]
            try:
                decoded = [None] * len(cids) if self._stuck else future.result(CHUNK_WAIT_S)
            except TimeoutError:
                self._stuck = True
                decoded = [None] * len(cids)
            except Exception:  # noqa: BLE001 - a worker that died: the cache reads these itself
                decoded = [None] * len(cids)
            self._ready.update(zip(cids, decoded, strict=True))
        found = self._ready.pop(raw, None)
        return None if found is None else (found[0], block, found[1])

    def close(self) -> None:
        if self._stuck:
            # ProcessPoolExecutor cannot stop a busy worker before Python 3.14
            # (terminate_workers); waiting for it would stop the build after all
            workers = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.kill()
        else:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._chunk_of, self._ready, self._manifest_blocks = {}, {}, {}

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
