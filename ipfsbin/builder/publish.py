"""Publish binpkgs: binpkg file, platform, descriptor, manifest and a signed attestation.

:func:`publish_binpkgs` works in three passes over the packages given:

1. the cheap checks of every package (container and metadata, sharing
   policy, descriptor normalization with the host's compiler standing in
   for the one the scan will find): bad input here stops the run before
   Kubo is touched;
2. per package, one read of the file feeds Kubo's ``add`` (CIDv1, raw
   leaves, 1 MiB chunks, ``schema/manifest.md`` §2) and the SHA256/MD5/SHA1
   hashers, while Portage's check of the GPKG Manifest and the ELF compiler
   scan run in another thread. The file is pinned only when every check
   passed and it is still the file that was checked (same identity before
   the first and after the last read, as many bytes uploaded as hashed);
3. per package, put the platform, descriptor and manifest blocks (Kubo's
   CIDs must equal ours) and pin the manifest; then the attestation
   statement and envelope, and the envelope's pin: last
   (``schema/attestation.md`` §4).

A failure in pass 2 undoes every pin this run made and removes the blocks
its adds stored (Kubo's ``block rm`` keeps blocks any pin still needs), so
bad input anywhere publishes nothing: no manifest or attestation ever named
those files. A failure in pass 3 undoes that package's pins and those of the
packages after it; the ones before it are complete and stay published.
Every object is deterministic (no time in the attestation, ed25519 is
deterministic), so publishing the same file again creates nothing new.

Sharing policy (fails closed; each switch is named for the check it turns
off): RESTRICT=bindist or fetch packages are refused unless
``allow_restricted``; binpkgs not built from source (quickpkg) unless
``allow_quickpkg``; images holding setuid/setgid files unless the package is
in ``setuid_packages`` (:data:`~ipfsbin.binpkg.SETUID_PACKAGES` by default).
A signed gpkg must verify against the builder's keyring (see
:mod:`ipfsbin.binpkg`). User patches cannot be detected from a binpkg.

Provenance: the manifest's ``build.origin`` says whether the binpkg was built
from source or made by quickpkg, and ``build.tests`` whether its test phase
ran. The ``test`` USE flag is left out of the descriptor: by its definition
in Gentoo's use.desc it enables only what running the tests needs, never the
installed result, so builds with and without it are the same build.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from ipfsbin.binpkg import (
    NO_COMMENT,
    SETUID_PACKAGES,
    BinpkgInfo,
    BinpkgMetadata,
    Compiler,
    Digester,
    FileIdentity,
    check_binpkg,
    read_binpkg_metadata,
)
from ipfsbin.binpkg.digests import READ_CHUNK
from ipfsbin.builder._objects import PackageObjects, package_objects
from ipfsbin.builder._upload import remove_added_file
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.descriptor import BuildFacts as DescriptorFacts
from ipfsbin.descriptor import Package, normalize
from ipfsbin.errors import (
    BinpkgError,
    BlockMismatchError,
    DescriptorError,
    KuboError,
)
from ipfsbin.host.facts import HostFacts, detect_host_facts, host_target
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import pin_name
from ipfsbin.kubo.records import AddResult
from ipfsbin.manifest import UNIXFS_CHUNKER, BuildCompiler, BuildHost
from ipfsbin.trust.keys import SigningKey

__all__ = [
    "HostFacts",
    "PublishProgress",
    "PublishResult",
    "detect_host_facts",
    "publish_binpkgs",
]

PublishProgress = Callable[[Path, int, int], None]
"""Called as ``progress(path, bytes_sent, total_bytes)`` while a binpkg is added."""

# Binpkg metadata key -> Packages key, where Portage renames it.
_PACKAGES_NAMES = {"repository": "REPO", "DESCRIPTION": "DESC"}
_ADD_TIMEOUT_SECONDS = 3600.0
_HINT_CHANGED = "wait until Portage has finished writing it, then publish again"
# USE flags that never change what a package installs (use.desc: "test" only
# enables dependencies and preparations needed to run the tests).
_NOT_ABI_USE = frozenset({"test"})


def _abi_words(words: Iterable[str]) -> str:
    return " ".join(w for w in words if w.lstrip("+-") not in _NOT_ABI_USE)


@dataclass(frozen=True, kw_only=True)
class PreparedBinpkg:
    """A binpkg read and checked, with its platform and descriptor: ready to store."""

    info: BinpkgInfo
    package: Package
    portage: dict[str, str]
    build: BuildHost

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def cpv(self) -> str:
        return self.info.cpv

    def objects(self, binpkg: CID, key: SigningKey) -> PackageObjects:
        """Every block that publishes it, with its file stored as ``binpkg``."""
        return package_objects(
            info=self.info,
            package=self.package,
            build=self.build,
            portage=self.portage,
            binpkg=binpkg,
            key=key,
        )


def _check_policy(info: BinpkgMetadata, *, allow_restricted: bool, allow_quickpkg: bool) -> None:
    if not allow_restricted and (info.bindist_restricted or info.fetch_restricted):
        which = " and ".join(
            word
            for word, on in (("bindist", info.bindist_restricted), ("fetch", info.fetch_restricted))
            if on
        )
        raise BinpkgError(
            f"{info.path}: {info.cpv} has RESTRICT={which}; its licence or distribution "
            "terms do not allow sharing the binary",
            hint="pass --allow-restricted only if you may redistribute it (e.g. a private index)",
        )
    if not allow_quickpkg and not info.built_from_source:
        raise BinpkgError(
            f"{info.path}: {info.cpv} was made from an installed package (quickpkg), "
            "not built from source; it may hold local configuration changes",
            hint="rebuild it with `emerge --buildpkg`, or pass --allow-quickpkg",
        )


def _portage_entry(info: BinpkgMetadata) -> dict[str, str]:
    entry = {_PACKAGES_NAMES.get(key, key): value for key, value in info.metadata.items()}
    entry["CPV"] = info.cpv
    return entry


def _describe(meta: BinpkgMetadata, compiler: Compiler, host: HostFacts) -> Package:
    """Normalize the descriptor; ``compiler`` when known, else the host's, names the compiler."""
    if compiler.known:
        family, version = compiler.family, compiler.version
    else:
        family, version = host.compiler, host.compiler_version
    facts = DescriptorFacts(
        chost=meta.chost,
        arch=meta.arch,
        profile=host.profile,
        libc=host.libc,
        libc_version=host.libc_version,
        compiler=family,
        compiler_version=version,
        cflags=meta.cflags,
        cxxflags=meta.cxxflags,
        ldflags=meta.ldflags,
        cpv=meta.cpv,
        slot=meta.metadata.get("SLOT", ""),
        repository=meta.repository,
        eapi=meta.eapi,
        use=_abi_words(meta.use),
        iuse=_abi_words(meta.iuse),
        iuse_effective=_abi_words(meta.iuse_effective),
        rdepend=meta.rdepend,
        depend=meta.depend,
        bdepend=meta.bdepend,
        requires=meta.requires,
    )
    target = host.target
    if target is None and "native" in f"{meta.cflags} {meta.cxxflags}":
        target = host_target()
    try:
        return normalize(facts, host_target=target)
    except DescriptorError as exc:
        raise DescriptorError(
            f"{meta.path}: {meta.cpv} is not shared: {exc.message}", hint=exc.hint
        ) from exc


def prepared_binpkg(info: BinpkgInfo, host: HostFacts) -> PreparedBinpkg:
    """The platform, descriptor and manifest inputs of a fully checked binpkg."""
    build = BuildHost(
        chost=info.chost,
        cbuild=info.cbuild or None,
        compiler=(
            BuildCompiler(family=info.compiler.family, version=info.compiler.version)
            if info.compiler.known
            else None
        ),
        origin=info.origin,
        tests=info.tests_ran,
    )
    return PreparedBinpkg(
        info=info,
        package=_describe(info, info.compiler, host),
        portage=_portage_entry(info),
        build=build,
    )


def precheck(
    path: Path, *, host: HostFacts, allow_restricted: bool, allow_quickpkg: bool
) -> BinpkgMetadata:
    """The cheap checks: container and metadata, sharing policy, a provisional descriptor.

    The descriptor is normalized with the host's compiler standing in for
    the one the ELF scan will find, so flags that cannot be normalized stop
    the run before anything is read in full or stored.
    """
    meta = read_binpkg_metadata(path)
    _check_policy(meta, allow_restricted=allow_restricted, allow_quickpkg=allow_quickpkg)
    _describe(meta, NO_COMMENT, host)
    return meta


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    """The CIDs one binpkg was published under; ``new_pins`` lists pins this run created."""

    path: Path
    cpv: str
    binpkg: CID
    platform: CID
    descriptor: CID
    manifest: CID
    attestation: CID
    statement: CID
    size: int
    sha256: bytes
    key_id: str
    new_pins: tuple[CID, ...]

    @classmethod
    def of(
        cls,
        info: BinpkgInfo,
        binpkg: CID,
        objects: PackageObjects,
        key_id: str,
        new_pins: tuple[CID, ...],
    ) -> PublishResult:
        return cls(
            path=info.path,
            cpv=info.cpv,
            binpkg=binpkg,
            platform=objects.platform,
            descriptor=objects.descriptor,
            manifest=objects.manifest,
            attestation=objects.attestation,
            statement=objects.statement,
            size=info.size,
            sha256=objects.manifest_value.sha256,
            key_id=key_id,
            new_pins=new_pins,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "cpv": self.cpv,
            "binpkg": str(self.binpkg),
            "platform": str(self.platform),
            "descriptor": str(self.descriptor),
            "manifest": str(self.manifest),
            "attestation": str(self.attestation),
            "statement": str(self.statement),
            "size": self.size,
            "sha256": self.sha256.hex(),
            "key": self.key_id,
            "new_pins": [str(c) for c in self.new_pins],
        }


class _TeeReader:
    """Reads the file once in 1 MiB chunks: each goes to the hashers, then to the uploader.

    The uploader asks for small pieces; the hashers get whole chunks, which
    their threads digest while the pieces are sent.
    """

    def __init__(self, handle: BinaryIO, digester: Digester) -> None:
        self._handle = handle
        self._digester = digester
        self._chunk = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        if self._offset >= len(self._chunk):
            self._chunk = self._handle.read(READ_CHUNK)
            self._offset = 0
            if not self._chunk:
                return b""
            self._digester.update(self._chunk)
        end = len(self._chunk) if size < 0 else self._offset + size
        piece = self._chunk[self._offset : end]
        self._offset += len(piece)
        return piece


class _Run:
    """Storing one package, remembering the pins it created and the file it added, to undo."""

    def __init__(self, client: KuboClient, cpv: str) -> None:
        self.client = client
        self.cpv = cpv
        self.created: list[CID] = []
        self.added: AddResult | None = None

    def pin(self, cid: CID, what: str) -> None:
        if self.client.is_pinned(cid, pin_type="recursive"):
            return
        self.client.pin_add([cid], recursive=True, name=pin_name("publish", what, self.cpv))
        self.created.append(cid)

    def put(self, blocks: Sequence[tuple[CID, bytes, str]]) -> None:
        """Store DAG-CBOR blocks in one request, in order; Kubo's CIDs must be ours."""
        stored = self.client.block_put_many([data for _, data, _ in blocks], codec=DAG_CBOR)
        for (cid, _, what), got in zip(blocks, stored, strict=True):
            if got != cid:
                raise BlockMismatchError(
                    f"Kubo stored the {what} block of {self.cpv} as {got}, expected {cid}",
                    hint="the daemon hashes blocks differently; check its version and config",
                )

    def undo(self) -> None:
        """Best effort: the original error is what the user must see."""
        # Newest first: the attestation pin (if any) goes before what it links.
        for cid in reversed(self.created):
            try:
                self.client.pin_rm([cid], recursive=True)
            except KuboError:
                continue
        self.created.clear()
        if self.added is not None:
            remove_added_file(self.client, self.added)
            self.added = None

    def add_checked(
        self,
        meta: BinpkgMetadata,
        host: HostFacts,
        progress: PublishProgress | None,
        setuid_packages: Collection[str] = SETUID_PACKAGES,
        *,
        pin: bool = True,
    ) -> tuple[PreparedBinpkg, CID]:
        """Add the file while it is checked and hashed; pin it once everything agrees.

        With ``pin`` False the file stays unpinned (the bulk path pins the
        attestation envelope over it) and :meth:`undo` still removes it.

        One read feeds the upload and the hashers; Portage's Manifest check
        and the ELF scan read the file in another thread. The file must keep
        its identity from the metadata read to the end, so all of them saw
        the bytes that were uploaded.
        """
        path, before = meta.path, meta.identity
        if before is None:
            raise ValueError("the metadata carries no file identity; use read_binpkg_metadata")
        callback = None
        if progress is not None:
            callback = lambda done: progress(path, done, before.size)  # noqa: E731
        try:
            handle = path.open("rb", buffering=0)
        except OSError as exc:
            raise BinpkgError(
                f"{path}: cannot be read any more ({exc.strerror})", hint=_HINT_CHANGED
            ) from exc
        with (
            handle,
            Digester() as digester,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipfsbin-check") as pool,
        ):
            opened = FileIdentity.from_stat(os.fstat(handle.fileno()))
            checking = pool.submit(check_binpkg, meta, setuid_packages=setuid_packages)
            result = self.client.add(
                cast(IO[bytes], _TeeReader(cast(BinaryIO, handle), digester)),
                name=path.name,
                chunker=UNIXFS_CHUNKER,
                pin=False,
                progress=callback,
                timeout=_ADD_TIMEOUT_SECONDS,
            )
            self.added = result
            digests = digester.finish()
            report = checking.result()
            after = FileIdentity.from_stat(os.fstat(handle.fileno()))
        if not opened == after == before == FileIdentity.of(path) or result.size != digests.size:
            raise BinpkgError(
                f"{path}: the file changed while it was being published "
                f"({before.size} bytes when read, {digests.size} uploaded)",
                hint=_HINT_CHANGED,
            )
        prepared = prepared_binpkg(
            BinpkgInfo.from_checks(meta, digests=digests, report=report), host
        )
        if pin:
            self.pin(result.cid, "binpkg")
        return prepared, result.cid

    def publish_objects(
        self, prepared: PreparedBinpkg, binpkg: CID, key: SigningKey
    ) -> PublishResult:
        """Platform, descriptor and manifest (manifest pinned), then the attestation: last."""
        info = prepared.info
        objects = prepared.objects(binpkg, key)
        self.put(objects.blocks[:3])
        self.pin(objects.manifest, "manifest")
        # The statement before the envelope that links it; the envelope's pin comes last.
        self.put(objects.blocks[3:])
        self.pin(objects.attestation, "attestation")
        return PublishResult.of(info, binpkg, objects, key.key_id, tuple(self.created))


def publish_binpkgs(
    paths: Iterable[Path | str],
    *,
    client: KuboClient,
    key: SigningKey,
    host: HostFacts | None = None,
    allow_restricted: bool = False,
    allow_quickpkg: bool = False,
    setuid_packages: Collection[str] = SETUID_PACKAGES,
    progress: PublishProgress | None = None,
) -> list[PublishResult]:
    """Publish each binpkg: file, platform, descriptor, manifest and signed attestation.

    All-or-nothing for bad input: every path gets the cheap checks before
    Kubo is touched, and a package failing its full check (made while its
    file is added) undoes everything this run stored; see the module
    docstring. Raises ``BinpkgError``/``DescriptorError`` for bad input and
    the ``KuboError`` family for the daemon. ``host`` defaults to
    :func:`detect_host_facts`. The same path given twice is published once.
    """
    unique: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    if not unique:
        raise ValueError("no binpkg paths given")
    facts = host if host is not None else detect_host_facts()
    metas = [
        precheck(path, host=facts, allow_restricted=allow_restricted, allow_quickpkg=allow_quickpkg)
        for path in unique
    ]
    runs: list[_Run] = []
    added: list[tuple[PreparedBinpkg, CID]] = []
    try:
        for meta in metas:
            runs.append(_Run(client, meta.cpv))
            added.append(runs[-1].add_checked(meta, facts, progress, setuid_packages))
    except BaseException:
        for run in reversed(runs):
            run.undo()
        raise
    results: list[PublishResult] = []
    try:
        for run, (prepared, binpkg) in zip(runs, added, strict=True):
            results.append(run.publish_objects(prepared, binpkg, key))
    except BaseException:
        for run in reversed(runs[len(results) :]):
            run.undo()
        raise
    return results
