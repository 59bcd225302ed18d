"""Verified builds kept across restarts: the manifest and descriptor blocks the catalog proved.

The first catalog build decodes every manifest and descriptor strictly
(canonical DAG-CBOR proven by re-encoding) and checks it against its model;
that is about half of its time. :func:`write_kept` records, per build the catalog
holds, the manifest's CID and the two blocks; :func:`read_kept` gives them
back to the next process, whose :class:`~ipfsbin.catalog.cache.BuildCache`
reads each with the hash, cbor2's own refusals and the model checks, and
skips only the canonical-form proof already made. The file is sealed by a
format version, a fingerprint of the code that checks the blocks, its length
and a SHA-256 of its contents: anything else than a whole file written by
this very code is refused as a whole (``schema/catalog.md``, "Verified
builds kept").
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ipfsbin.codec.cid import CID

__all__ = ["FORMAT_VERSION", "KeptBuilds", "read_kept", "rules_fingerprint", "write_kept"]

FORMAT_VERSION = 1
MAGIC = b"ipfsbin-catalog-builds\n"
_HEAD = struct.Struct(">I32sQ32s")
"""Format version, rules fingerprint, payload length, payload SHA-256."""
_RECORD = struct.Struct(">HII")
"""Lengths of a record's manifest CID, manifest block and descriptor block."""

# The code whose checks a record stands for: decoding, the manifest and
# descriptor models, and this file's own reading. A change to any of them
# may change what is accepted, so the records of older code are not used.
_RULES = (
    "codec/dagcbor.py",
    "codec/cid.py",
    "codec/fields.py",
    "manifest.py",
    "descriptor/model.py",
    "catalog/kept.py",
)

_log = logging.getLogger("ipfsbin.catalog")


@cache
def rules_fingerprint() -> bytes:
    """SHA-256 over the format version and the source of the checking code."""
    digest = hashlib.sha256(b"%d\n" % FORMAT_VERSION)
    root = Path(__file__).resolve().parents[1]
    for name in _RULES:
        source = (root / name).read_bytes()
        digest.update(b"%s %d\n" % (name.encode(), len(source)))
        digest.update(source)
    return digest.digest()


class KeptBuilds:
    """Manifest CID -> (manifest block, descriptor block), as a whole file gave them.

    Each record is handed out once (:meth:`take`): after the build that
    asked for it, the catalog holds the decoded objects and the bytes here
    are let go.
    """

    def __init__(self, records: dict[bytes, tuple[bytes, bytes]] | None = None) -> None:
        self._records = records or {}

    def __len__(self) -> int:
        return len(self._records)

    def take(self, manifest: CID) -> tuple[bytes, bytes] | None:
        return self._records.pop(manifest.bytes, None)

    def clear(self) -> None:
        self._records = {}


def write_kept(path: Path, records: Iterable[tuple[CID, bytes, bytes]]) -> int:
    """Replace ``path`` with ``records`` (manifest CID, manifest block, descriptor block).

    Written to a temporary file beside it, flushed to disk, then renamed
    over it: a process killed at any point leaves the old file or the new
    one, never part of one. Returns the number of records written.
    """
    parts: list[bytes] = []
    for cid, manifest, descriptor in records:
        raw = cid.bytes
        parts += (_RECORD.pack(len(raw), len(manifest), len(descriptor)), raw, manifest, descriptor)
    payload = b"".join(parts)
    head = MAGIC + _HEAD.pack(
        FORMAT_VERSION, rules_fingerprint(), len(payload), hashlib.sha256(payload).digest()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # one name: a file a killed writer left is overwritten by the next
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)
    return len(parts) // 4


def read_kept(path: Path) -> KeptBuilds:
    """The records of ``path``; none when it is missing or refused (the reason is logged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return KeptBuilds()
    except OSError as exc:
        return _refused(path, f"cannot be read: {exc}")
    start = len(MAGIC) + _HEAD.size
    if len(data) < start or not data.startswith(MAGIC):
        return _refused(path, "is not a kept-builds file or is cut short")
    version, rules, length, digest = _HEAD.unpack_from(data, len(MAGIC))
    if version != FORMAT_VERSION:
        return _refused(path, f"has format version {version}, this code reads {FORMAT_VERSION}")
    try:
        ours = rules_fingerprint()
    except OSError as exc:  # installed without its sources: nothing to compare with
        return _refused(path, f"cannot be matched with this code: {exc}")
    if rules != ours:
        return _refused(path, "was written by other checking code")
    payload = memoryview(data)[start:]  # hashed without a copy of tens of megabytes
    if len(payload) != length:
        return _refused(path, f"holds {len(payload)} bytes of records, its header says {length}")
    if hashlib.sha256(payload).digest() != digest:
        return _refused(path, "does not match its digest")
    records: dict[bytes, tuple[bytes, bytes]] = {}
    at, end = start, len(data)
    while at < end:
        if end - at < _RECORD.size:
            return _refused(path, f"has a record cut short at byte {at}")
        cid_length, manifest_length, descriptor_length = _RECORD.unpack_from(data, at)
        at += _RECORD.size
        ends = at + cid_length + manifest_length + descriptor_length
        if ends > end:
            return _refused(path, f"has a record running past its end at byte {at}")
        cid_end, manifest_end = at + cid_length, at + cid_length + manifest_length
        records[data[at:cid_end]] = (data[cid_end:manifest_end], data[manifest_end:ends])
        at = ends
    return KeptBuilds(records)


def _refused(path: Path, why: str) -> KeptBuilds:
    _log.warning(
        "kept builds refused",
        extra={
            "fields": {
                "path": str(path),
                "reason": why,
                "then": "every build is read and checked from its blocks",
            }
        },
    )
    return KeptBuilds()
