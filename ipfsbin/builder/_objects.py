"""The blocks that publish one binpkg: platform, descriptor, manifest, attestation.

Pure: built from a checked binpkg and its file's CID, nothing stored. Both
``publish`` (one package, each step its own request) and the bulk path
(many packages in one CAR) store exactly these blocks, in this order: what a
block links comes before it, and the attestation envelope last
(``schema/attestation.md`` §4). The envelope links, through its statement,
the manifest, which links the descriptor (and through it the platform) and
the binpkg file: a recursive pin of the envelope keeps the whole package.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipfsbin.binpkg import BinpkgInfo
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor import Package
from ipfsbin.manifest import BuildHost, Manifest
from ipfsbin.trust.attestation import AttestationStatement, attest
from ipfsbin.trust.keys import SigningKey

__all__ = ["PackageObjects", "package_objects"]


@dataclass(frozen=True, kw_only=True)
class PackageObjects:
    platform: CID
    descriptor: CID
    manifest: CID
    manifest_value: Manifest
    statement: CID
    attestation: CID
    blocks: tuple[tuple[CID, bytes, str], ...]
    """(CID, DAG-CBOR bytes, what it is), linked blocks first, the envelope last."""


def package_objects(
    *,
    info: BinpkgInfo,
    package: Package,
    build: BuildHost,
    portage: dict[str, str],
    binpkg: CID,
    key: SigningKey,
) -> PackageObjects:
    """Every block of one published package, deterministic for the same inputs."""
    platform_cid, platform_block = package.platform.block
    descriptor_cid, descriptor_block = package.descriptor.block
    manifest = Manifest.create(
        descriptor=descriptor_cid,
        binpkg=binpkg,
        format=info.format,
        size=info.size,
        sha256=bytes.fromhex(info.sha256),
        sha1=bytes.fromhex(info.sha1),
        md5=bytes.fromhex(info.md5),
        portage=portage,
        build=build,
    )
    manifest_cid, manifest_block = manifest.to_block()
    signed = attest(AttestationStatement.for_manifest(manifest_cid, manifest), key)
    return PackageObjects(
        platform=platform_cid,
        descriptor=descriptor_cid,
        manifest=manifest_cid,
        manifest_value=manifest,
        statement=signed.payload_id,
        attestation=signed.cid,
        blocks=(
            (platform_cid, platform_block, "platform"),
            (descriptor_cid, descriptor_block, "descriptor"),
            (manifest_cid, manifest_block, "manifest"),
            (signed.payload_id, signed.payload_block, "attestation statement"),
            (signed.cid, signed.block, "attestation"),
        ),
    )
