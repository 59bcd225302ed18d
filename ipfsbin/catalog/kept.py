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

import logging
import struct
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ipfsbin.catalog.sealed import FileRefused, code_fingerprint, read_sealed, write_sealed
from ipfsbin.codec.cid import CID

__all__ = ["FORMAT_VERSION", "KeptBuilds", "read_kept", "rules_fingerprint", "write_kept"]

FORMAT_VERSION = 1
MAGIC = b"ipfsbin-catalog-builds\n"
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
    "catalog/sealed.py",
)

_log = logging.getLogger("ipfsbin.catalog")


@cache
def rules_fingerprint() -> bytes:
    """SHA-256 over the format version and the source of the checking code."""
    return code_fingerprint(FORMAT_VERSION, _RULES)


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

    def get(self, manifest: CID) -> tuple[bytes, bytes] | None:
        """The record, left for :meth:`take`."""
        return self._records.get(manifest.bytes)

    def clear(self) -> None:
        self._records = {}


def write_kept(path: Path, records: Iterable[tuple[CID, bytes, bytes]]) -> int:
    """Replace ``path`` with ``records`` (manifest CID, manifest block, descriptor block).

    Sealed and replaced as :func:`~ipfsbin.catalog.sealed.write_sealed` does: a
    process killed at any point leaves the old file or the new one, never
    part of one. Returns the number of records written.
    """
    parts: list[bytes] = []
    for cid, manifest, descriptor in records:
        raw = cid.bytes
        parts += (_RECORD.pack(len(raw), len(manifest), len(descriptor)), raw, manifest, descriptor)
    write_sealed(path, parts, magic=MAGIC, version=FORMAT_VERSION, fingerprint=rules_fingerprint())
    return len(parts) // 4


def read_kept(path: Path) -> KeptBuilds:
    """The records of ``path``; none when it is missing or refused (the reason is logged)."""
    try:
        payload = read_sealed(
            path,
            magic=MAGIC,
            version=FORMAT_VERSION,
            fingerprint=rules_fingerprint,
            what="kept-builds",
        )
    except FileRefused as exc:
        return _refused(path, exc.reason)
    if payload is None:
        return KeptBuilds()
    records: dict[bytes, tuple[bytes, bytes]] = {}
    at, end = 0, len(payload)
    while at < end:
        if end - at < _RECORD.size:
            return _refused(path, f"has a record cut short at byte {at} of its records")
        cid_length, manifest_length, descriptor_length = _RECORD.unpack_from(payload, at)
        at += _RECORD.size
        ends = at + cid_length + manifest_length + descriptor_length
        if ends > end:
            return _refused(path, f"has a record running past its end at byte {at}")
        cid_end, manifest_end = at + cid_length, at + cid_length + manifest_length
        records[bytes(payload[at:cid_end])] = (
            bytes(payload[cid_end:manifest_end]),
            bytes(payload[manifest_end:ends]),
        )
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
