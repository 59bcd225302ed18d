"""Builds of small, valid published packages (platform, descriptor, manifest, attestation).

Used by the unit tests over a memory store and by the integration tests over
Kubo: ``put`` stores blocks, and the binpkg bytes are small enough to be one
raw block, so their UnixFS CID (CIDv1, raw leaves) is the raw block's CID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.descriptor.hardening import Hardening
from ipfsbin.descriptor.model import Descriptor, OptProfile, Platform
from ipfsbin.kubo.pins import NoPins
from ipfsbin.maintainer import chain
from ipfsbin.manifest import BuildHost, Manifest
from ipfsbin.store.base import BlockStore
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.attestation import Attestation, AttestationStatement, attest
from ipfsbin.trust.keys import SigningKey

T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400

MAINT_A, MAINT_B, MAINT_C, BUILDER_X, BUILDER_Y, STRANGER = (
    SigningKey.from_seed(bytes([0x40 + i]) * 32) for i in range(6)
)

PLATFORM = Platform(
    chost="x86_64-pc-linux-gnu",
    arch="amd64",
    profile="default/linux/amd64/23.0",
    libc="glibc",
    libc_version="2.39",
    compiler="gcc",
    compiler_version="13.2.1",
    cflags=OptProfile(
        features=("mmx", "sse", "sse2"),
        tune=None,
        opt="2",
        math=(),
        hardening=Hardening(
            stack_protector="strong",
            fortify=2,
            stack_clash=True,
            cf_protection=("branch", "return"),
            auto_var_init="uninitialized",
            pie=True,
        ),
        flags=(),
    ),
    cxxflags=None,
    ldflags=(),
    runtime=(),
)


def descriptor(cpv: str, use: tuple[str, ...] = ()) -> Descriptor:
    return Descriptor(
        platform=PLATFORM.cid,
        cpv=cpv,
        slot="0",
        subslot="0",
        repository="gentoo",
        eapi="8",
        use=use,
        iuse=use,
        deps=(),
        requires=(),
    )


@dataclass(frozen=True)
class Published:
    descriptor: Descriptor
    manifest: Manifest
    manifest_cid: CID
    data: bytes
    attestation: Attestation | None

    @property
    def binpkg(self) -> CID:
        return self.manifest.binpkg


def make_manifest(desc: Descriptor, data: bytes, *, binpkg: CID | None = None) -> Manifest:
    return Manifest.create(
        descriptor=desc.cid,
        binpkg=binpkg if binpkg is not None else cid_for(RAW, data),
        format="gpkg",
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        sha1=hashlib.sha1(data).digest(),  # noqa: S324
        md5=hashlib.md5(data).digest(),  # noqa: S324
        portage={"CPV": desc.cpv, "EAPI": "8", "SLOT": "0", "BUILD_TIME": "1767225600"},
        build=BuildHost(chost="x86_64-pc-linux-gnu"),
    )


def publish(
    store: BlockStore,
    cpv: str,
    data: bytes,
    builder: SigningKey | None,
    *,
    desc: Descriptor | None = None,
    manifest: Manifest | None = None,
) -> Published:
    """Store platform, descriptor, manifest and (if ``builder``) an attestation."""
    desc = desc or descriptor(cpv)
    manifest = manifest or make_manifest(desc, data)
    manifest_cid, manifest_block = manifest.to_block()
    store.put_many([PLATFORM.block, desc.block, (manifest_cid, manifest_block)])
    signed = None
    if builder is not None:
        signed = attest(AttestationStatement.for_manifest(manifest_cid, manifest), builder)
        store.put_many(signed.blocks())
    return Published(
        descriptor=desc, manifest=manifest, manifest_cid=manifest_cid, data=data, attestation=signed
    )


def forged(attestation: Attestation) -> Attestation:
    """The same statement with one bit of the signature flipped."""
    from ipfsbin.trust.signing import Signature

    (sig,) = attestation.signatures
    bad = bytes([sig.sig[0] ^ 1]) + sig.sig[1:]
    return Attestation.create(attestation.statement, [Signature(key=sig.key, sig=bad)])


class Files:
    """A memory stand-in for UnixFS files: raw single-block files by CID."""

    def __init__(self) -> None:
        self.files: dict[CID, bytes] = {}
        self.reads = 0

    def add(self, data: bytes) -> CID:
        cid = cid_for(RAW, data)
        self.files[cid] = data
        return cid

    def read(self, cid: CID) -> Iterable[bytes]:
        self.reads += 1
        data = self.files[cid]
        yield data[: len(data) // 2]
        yield data[len(data) // 2 :]


def memory() -> tuple[MemoryBlockStore, Files]:
    return MemoryBlockStore(), Files()


class MemoryIndex:
    """A maintainer's index in memory, made by ``index init`` with the given local keys."""

    def __init__(
        self,
        *local: SigningKey,
        threshold: int = 1,
        extra: tuple[str, ...] = (),
        builders: tuple[SigningKey, ...] = (BUILDER_X, BUILDER_Y),
    ) -> None:
        self.store, self.files = memory()
        self.pins = NoPins()
        self.ws, self.init = chain.init_index(
            "default",
            store=self.store,
            pins=self.pins,
            keys=[(f"m{i}", k) for i, k in enumerate(local)],
            maintainers=extra,
            threshold=threshold,
            builders=[b.key_id for b in builders],
            now=T0,
        )
