"""Publishing many binpkgs at once: one CAR import and one pin request per batch.

``publish`` stores one package in about eight requests (add, three block
puts and three pins with their checks). A PKGDIR is mostly small packages,
where those round trips cost more than the bytes (``schema/manifest.md``
§2 on why the result is the same). Here a batch of packages is:

1. read and checked one by one, as ``publish`` checks them (Portage's
   Manifest check, the image scan, the digests, the file's identity before
   and after; MD5/SHA1 taken from the builder's own ``Packages`` entry when
   it still describes the file, ``schema/share.md`` §4):
   :func:`inspect_package`, which needs neither Kubo nor the key, so
   ``share`` runs it in worker processes. A file that fits one UnixFS chunk
   (``UNIXFS_CHUNKER``, 1 MiB) is read into memory once: with
   CIDv1 and raw leaves its UnixFS DAG is that one ``raw`` block, so its CID
   is the sha2-256 of the bytes already hashed for the manifest;
2. :func:`complete_package`: a larger file is added unpinned through Kubo's
   ``add`` (one request each; those are bandwidth, not round trips), and
   must still be the file checked; the platform, descriptor, manifest and
   attestation blocks are built and signed in memory (:mod:`._objects`);
3. stored with one ``dag/import`` of a CAR holding every small file and
   every object block of the batch, roots unpinned;
4. pinned with one recursive pin of the batch's root (:func:`batch_root`, a
   block listing every attestation envelope), accounted in the node's
   :class:`~ipfsbin.kubo.pins.PinLedger`: the envelope links the statement,
   the manifest, the descriptor, the platform and the file, so one pin keeps
   the batch. Kubo syncs its pin store for every root it pins (milliseconds
   each, more than the rest of a small package's storing), hence one root
   per batch rather than one per package (``schema/share.md`` §4).

A package failing its checks drops out of the batch with its error (its
added file removed); the others go on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ipfsbin.binpkg import (
    SETUID_PACKAGES,
    BinpkgInfo,
    BinpkgMetadata,
    FileIdentity,
    check_binpkg,
    read_binpkg_contents,
)
from ipfsbin.binpkg.digests import READ_CHUNK, FileDigests, RecordedDigests
from ipfsbin.builder._objects import PackageObjects
from ipfsbin.builder.publish import PreparedBinpkg, PublishResult, _Run, prepared_binpkg
from ipfsbin.codec import dagcbor
from ipfsbin.codec.car import car_bytes
from ipfsbin.codec.cid import CID, RAW, cid_from_sha256
from ipfsbin.errors import BinpkgError
from ipfsbin.host.facts import HostFacts
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import PinLedger
from ipfsbin.manifest import UNIXFS_CHUNKER
from ipfsbin.trust.keys import SigningKey

__all__ = [
    "BATCH_TYPE",
    "CheckedPackage",
    "InspectedPackage",
    "batch_root",
    "complete_package",
    "forget_checked",
    "inspect_package",
    "store_batch",
]

BATCH_TYPE = "ipfsbin/share-batch/1"
"""The ``type`` of a batch root (``schema/share.md`` §4)."""
SINGLE_BLOCK_BYTES = READ_CHUNK
"""Files up to this size are one raw UnixFS block (the chunker's size, 1 MiB)."""
_HINT_CHANGED = "wait until Portage has finished writing it; it is queued again when it settles"
_IMPORT_TIMEOUT_SECONDS = 600.0
_ADD_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True, kw_only=True)
class InspectedPackage:
    """A binpkg read, checked and hashed, its descriptor normalized; no Kubo, no key.

    What a worker process hands back (it pickles): signing and storing stay
    with the process that holds the key and the Kubo client.
    """

    prepared: PreparedBinpkg
    data: bytes | None
    """The file's bytes when it is one block (stored with the batch); None when larger."""


@dataclass(frozen=True, kw_only=True)
class CheckedPackage:
    """A binpkg read, checked and hashed, its blocks built; nothing pinned yet."""

    prepared: PreparedBinpkg
    binpkg: CID
    objects: PackageObjects
    data: bytes | None
    """The file's bytes when it is one block (stored with the batch); None when added."""
    added: _Run | None
    """The run that added a larger file unpinned (to undo), or None."""

    def result(self, key_id: str) -> PublishResult:
        return PublishResult.of(self.prepared.info, self.binpkg, self.objects, key_id, ())


def _read_small(
    meta: BinpkgMetadata, recorded: RecordedDigests | None
) -> tuple[bytes, FileDigests]:
    path, before = meta.path, meta.identity
    if before is None:
        raise ValueError("the metadata carries no file identity; use read_binpkg_metadata")
    try:
        with path.open("rb", buffering=0) as handle:
            opened = FileIdentity.from_stat(os.fstat(handle.fileno()))
            data = handle.read(SINGLE_BLOCK_BYTES + 1)
    except OSError as exc:
        raise BinpkgError(
            f"{path}: cannot be read any more ({exc.strerror})", hint=_HINT_CHANGED
        ) from exc
    if opened != before or len(data) != before.size:
        raise BinpkgError(
            f"{path}: the file changed while it was being published "
            f"({before.size} bytes when read, {len(data)} now)",
            hint=_HINT_CHANGED,
        )
    if recorded is None:
        recorded = RecordedDigests(
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        )
    digests = FileDigests(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=recorded.md5,
        sha1=recorded.sha1,
    )
    return data, digests


def inspect_package(
    meta: BinpkgMetadata,
    *,
    host: HostFacts,
    setuid_packages: Collection[str] = SETUID_PACKAGES,
    recorded: RecordedDigests | None = None,
) -> InspectedPackage:
    """Check and hash one package and normalize its descriptor: everything but Kubo and the key.

    ``recorded``: the MD5/SHA1 of the builder's own Packages entry for this
    file (:mod:`ipfsbin.builder.pkgindex`), taken instead of hashed; for an
    unsigned gpkg, Portage's Manifest check then leaves out the image's
    digests (``schema/share.md`` §4). The SHA256 is always hashed.
    Raises ``BinpkgError``/``DescriptorError`` for bad input.
    """
    before = meta.identity
    if before is None:
        raise ValueError("the metadata carries no file identity; use read_binpkg_metadata")
    image_digests = recorded is None or meta.signed
    if before.size > SINGLE_BLOCK_BYTES:
        # Checks and hashing side by side; the file must keep its identity throughout.
        info = read_binpkg_contents(
            meta, setuid_packages=setuid_packages, recorded=recorded, image_digests=image_digests
        )
        return InspectedPackage(prepared=prepared_binpkg(info, host), data=None)
    data, digests = _read_small(meta, recorded)
    report = check_binpkg(meta, setuid_packages=setuid_packages, image_digests=image_digests)
    if FileIdentity.of(meta.path) != before:
        raise BinpkgError(
            f"{meta.path}: the file changed while it was being published", hint=_HINT_CHANGED
        )
    info = BinpkgInfo.from_checks(meta, digests=digests, report=report)
    return InspectedPackage(prepared=prepared_binpkg(info, host), data=data)


def complete_package(
    inspected: InspectedPackage, *, client: KuboClient, key: SigningKey
) -> CheckedPackage:
    """Sign an inspected package's blocks; a larger file is added to Kubo unpinned first.

    The add reads the file again: it must still be the file that was checked
    and hashed (the identity taken before the metadata read, the size hashed).
    Raises ``BinpkgError`` when it is not (what was added is removed) and
    the ``KuboError`` family.
    """
    prepared = inspected.prepared
    if inspected.data is not None:
        # The sha256 the examiner took of these bytes is the raw block's digest.
        binpkg = cid_from_sha256(RAW, bytes.fromhex(prepared.info.sha256))
        return CheckedPackage(
            prepared=prepared,
            binpkg=binpkg,
            objects=prepared.objects(binpkg, key),
            data=inspected.data,
            added=None,
        )
    info = prepared.info
    run = _Run(client, info.cpv)
    try:
        run.added = client.add(
            info.path,
            name=info.path.name,
            chunker=UNIXFS_CHUNKER,
            pin=False,
            timeout=_ADD_TIMEOUT_SECONDS,
        )
        if FileIdentity.of(info.path) != info.identity or run.added.size != info.size:
            raise BinpkgError(
                f"{info.path}: the file changed while it was being published "
                f"({info.size} bytes when checked, {run.added.size} added)",
                hint=_HINT_CHANGED,
            )
        objects = prepared.objects(run.added.cid, key)
    except BaseException:
        run.undo()
        raise
    return CheckedPackage(
        prepared=prepared, binpkg=run.added.cid, objects=objects, data=None, added=run
    )


def forget_checked(checked: CheckedPackage) -> None:
    """A checked package that will not be stored: remove the file it added, if any."""
    if checked.added is not None:
        checked.added.undo()


def batch_root(batch: Sequence[CheckedPackage]) -> tuple[CID, bytes]:
    """The block one pin keeps ``batch`` by: its attestation envelopes, in batch order.

    Deterministic: the same packages in the same order give the same CID.
    """
    envelopes = [checked.objects.attestation for checked in batch]
    return dagcbor.encode_block({"type": BATCH_TYPE, "attestations": envelopes})


def store_batch(
    batch: Sequence[CheckedPackage],
    *,
    root: tuple[CID, bytes],
    client: KuboClient,
    ledger: PinLedger,
    holder: str,
) -> None:
    """Store every block of ``batch`` with one CAR import, then pin ``root`` (one pin).

    ``root`` is :func:`batch_root` of ``batch``, which the caller has already
    recorded in its queue before anything is stored.

    Blocks several packages share (one platform, a descriptor) go in once.
    Raises the ``KuboError`` family; what was imported but not pinned is
    named by nothing and left for ``ipfs repo gc``.
    """
    if not batch:
        return
    blocks: dict[CID, bytes] = {}
    for checked in batch:
        if checked.data is not None:
            blocks[checked.binpkg] = checked.data
        for cid, data, _ in checked.objects.blocks:
            blocks.setdefault(cid, data)
    root_cid, root_block = root
    blocks[root_cid] = root_block
    # Every CID here was computed from its bytes in this run; Kubo checks them on import.
    car = car_bytes([root_cid], blocks.items(), verify=False)
    client.dag_import(car, pin_roots=False, timeout=_IMPORT_TIMEOUT_SECONDS)
    ledger.hold(holder, [root_cid], recursive=True, one_request=True)
