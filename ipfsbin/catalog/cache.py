"""Verified builds loaded once and kept: a catalog rebuild after a sync touches only what changed.

:class:`BuildCache` loads a build's manifest, descriptor, platform and
attestations from a block store (each checked against its CID by the
store) and keeps them, together with the parsed entries of every index leaf
(by the leaf's CID) and the predicate's verdict on each build for the
current host profile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ipfsbin.catalog.decoding import MIN_PAIRS, WORKERS, Decoder, Pair, descriptor_link
from ipfsbin.catalog.fit import Fit, check_fit
from ipfsbin.catalog.kept import KeptBuilds
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.compat import (
    HostProfile,
    PlatformVerdict,
    SharingPolicy,
    UseConfig,
    platform_verdict,
)
from ipfsbin.descriptor.model import Descriptor, Package, Platform
from ipfsbin.errors import IpfsbinError
from ipfsbin.index._node import Node
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import IndexKey, descriptor_digest, parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.attestation import Attestation, check_attestation
from ipfsbin.trust.signing import Role, load_signed_blocks

__all__ = ["Build", "BuildCache", "build_time_of"]


@dataclass(frozen=True, kw_only=True)
class Build:
    """One index entry's verified objects and the builders that agree on its bytes."""

    manifest_cid: CID
    manifest: Manifest
    package: Package
    agreeing: tuple[str, ...]
    manifest_block: bytes = b""
    """The manifest's bytes as proven (kept so the build can be written to the kept-builds file)."""

    @functools.cached_property
    def build_time(self) -> int:
        """Read when ranking, listing and rendering: parsed once."""
        return build_time_of(self.manifest)


def build_time_of(manifest: Manifest) -> int:
    """The BUILD_TIME a manifest records (0 when it records none)."""
    return int(manifest.portage.get("BUILD_TIME", "0") or 0)


class BuildCache:
    """Builds loaded from ``store``, by manifest, attestations and builders role.

    Also kept from one catalog build to the next, because a head that moved
    changes few entries: the parsed entries of each index leaf (by the
    leaf's CID), and the predicate's verdict on each build for the last host
    profile (dropped when the host changes; one package's verdicts also when
    its own USE configuration does).
    """

    def __init__(
        self,
        store: BlockStore,
        *,
        kept: KeptBuilds | None = None,
        parallel_from: int = MIN_PAIRS if WORKERS else 0,
    ) -> None:
        self.store = store
        self.parallel_from = parallel_from
        """Builds to load at once from which workers decode them (0: never)."""
        self.kept = kept or KeptBuilds()
        """Blocks an earlier process proved canonical (:mod:`ipfsbin.catalog.kept`)."""
        self.from_kept = 0
        """Builds read from :attr:`kept` rather than from the store."""
        self.changes = 0
        """Counts builds loaded or dropped: the kept-builds file is due when it moved."""
        self._builds: dict[tuple[CID, tuple[CID, ...], Role], Build] = {}
        self._platforms: dict[CID, Platform] = {}
        self._used: set[tuple[CID, tuple[CID, ...], Role]] = set()
        self._tree = ProllyTree(store)
        self._leaves: dict[CID, list[tuple[IndexKey, IndexEntry]]] = {}
        self._leaves_used: set[CID] = set()
        self._fits: dict[CID, tuple[UseConfig | None, Fit]] = {}
        self._fits_for: tuple[HostProfile, frozenset[str], SharingPolicy] | None = None
        self._platform_verdicts: dict[CID, PlatformVerdict] = {}
        self._fit_profile: HostProfile | None = None
        self._fit_rest: tuple[frozenset[str], SharingPolicy] | None = None
        self.loaded = 0
        self._decoder: Decoder | None = None

    def entries(self, index_root: CID) -> Iterator[tuple[IndexKey, IndexEntry]]:
        """Every entry of the index at ``index_root``, in key order (local blocks only)."""
        yield from self._walk(self._tree.load(index_root))

    def _walk(self, node: Node) -> Iterator[tuple[IndexKey, IndexEntry]]:
        if node.level == 0:
            yield from self._leaf(node)
            return
        for position, cid in enumerate(node.children):
            # A leaf is its CID: whichever parent names it, it holds the same entries.
            known = self._leaves.get(cid) if node.level == 1 else None
            if known is not None:
                self._leaves_used.add(cid)
                yield from known
            else:
                yield from self._walk(self._tree.child(node, position))

    def _leaf(self, node: Node) -> list[tuple[IndexKey, IndexEntry]]:
        parsed = [
            (parse_index_key(key), IndexEntry.from_dag(value))
            for key, value in zip(node.keys, node.values, strict=True)
        ]
        self._leaves[node.cid] = parsed
        self._leaves_used.add(node.cid)
        return parsed

    def fit(
        self,
        build: Build,
        cp: str,
        profile: HostProfile,
        accept_chosts: frozenset[str],
        sharing: SharingPolicy,
    ) -> Fit:
        """:func:`check_fit` of ``build`` (of package ``cp``) on ``profile``, remembered.

        The USE configuration counts per package: a new package elsewhere in
        the index does not make the verdicts on the others stale. The axes a
        platform decides are judged once per platform.
        """
        if profile is not self._fit_profile or (accept_chosts, sharing) != self._fit_rest:
            base = (dataclasses.replace(profile, use={}), accept_chosts, sharing)
            if base != self._fits_for:
                self._fits = {}
                self._platform_verdicts = {}
                self._fits_for = base
            self._fit_profile = profile
            self._fit_rest = (accept_chosts, sharing)
        use = profile.use.get(cp)
        found = self._fits.get(build.manifest_cid)
        if found is None or found[0] != use:
            package = build.package
            shared = self._platform_verdicts.get(package.descriptor.platform)
            if shared is None:
                shared = platform_verdict(package.platform, profile)
                self._platform_verdicts[package.descriptor.platform] = shared
            found = (
                use,
                check_fit(
                    package, profile, accept_chosts=accept_chosts, sharing=sharing, platform=shared
                ),
            )
            self._fits[build.manifest_cid] = found
        return found[1]

    def load(self, key: IndexKey, entry: IndexEntry, builders: Role) -> Build:
        """The build of ``entry``; ``IpfsbinError`` when a block is missing or malformed."""
        ident = (entry.manifest, entry.attestations, builders)
        self._used.add(ident)
        found = self._builds.get(ident)
        if found is None:
            found = self._load(key, entry, builders)
            self._builds[ident] = found
            self.loaded += 1
            self.changes += 1
        return found

    def forget(self, entry: IndexEntry, builders: Role) -> None:
        """Drop the build of ``entry`` (gone from its index) and the verdict on it."""
        ident = (entry.manifest, entry.attestations, builders)
        if self._builds.pop(ident, None) is not None:
            self.changes += 1
        self._used.discard(ident)
        self._fits.pop(entry.manifest, None)  # recomputed if another entry names this manifest

    def forget_unused(self) -> None:
        """Drop what the last round did not ask for (entries gone from every head)."""
        if len(self._used) != len(self._builds):
            self.changes += 1
        self._builds = {k: v for k, v in self._builds.items() if k in self._used}
        self.kept.clear()  # every build asked for has been asked: what is left is for none
        self._used = set()
        self._leaves = {k: v for k, v in self._leaves.items() if k in self._leaves_used}
        self._leaves_used = set()
        kept = {key[0] for key in self._builds}
        self._fits = {k: v for k, v in self._fits.items() if k in kept}

    def verified(self) -> Iterator[tuple[CID, bytes, bytes]]:
        """(manifest CID, manifest block, descriptor block) of every build held, once each."""
        seen: set[CID] = set()
        for build in self._builds.values():
            if build.manifest_cid not in seen and build.manifest_block:
                seen.add(build.manifest_cid)
                descriptor = build.package.descriptor
                yield build.manifest_cid, build.manifest_block, descriptor.block[1]

    @contextlib.contextmanager
    def decoding(self, entries: Sequence[IndexEntry], builders: Role) -> Iterator[None]:
        """For the duration, the builds of ``entries`` not loaded yet are decoded by workers.

        Only when there are many (:attr:`parallel_from`);
        load them in the order given. A block that cannot be read here is left
        to :meth:`load`, which reads (and refuses) it as always.
        """
        pairs: list[Pair] = []
        least = self.parallel_from
        todo = [e for e in entries if (e.manifest, e.attestations, builders) not in self._builds]
        if least and len(todo) >= least:
            for entry in todo:
                pair = self._pair(entry.manifest)
                if pair is not None:
                    pairs.append(pair)
        if not least or len(pairs) < least:
            yield
            return
        with Decoder(pairs) as decoder:
            self._decoder = decoder
            try:
                yield
            finally:
                self._decoder = None

    def _pair(self, cid: CID) -> Pair | None:
        kept = self.kept.get(cid)
        try:
            manifest = kept[0] if kept is not None else self.store.get(cid)
            descriptor_cid = descriptor_link(manifest)
            if descriptor_cid is None:
                return None
            descriptor = kept[1] if kept is not None else self.store.get(descriptor_cid)
        except IpfsbinError:
            return None
        return cid, manifest, descriptor_cid, descriptor, kept is not None

    def _blocks(self, cid: CID) -> tuple[Manifest, bytes, Descriptor]:
        """The manifest ``cid``, its bytes and its descriptor: kept, else from the store."""
        decoded = self._decoder.take(cid) if self._decoder is not None else None
        if decoded is not None:
            if self.kept.take(cid) is not None:
                self.from_kept += 1
            return decoded
        kept = self.kept.take(cid)
        if kept is not None:
            try:
                manifest = Manifest.from_checked_block(cid, kept[0])
                descriptor = Descriptor.from_checked_block(manifest.descriptor, kept[1])
            except IpfsbinError:
                pass  # not what its CIDs name: read the blocks as if it had not been kept
            else:
                self.from_kept += 1
                return manifest, kept[0], descriptor
        data = self.store.get(cid)
        manifest = Manifest.from_block(cid, data)
        descriptor = Descriptor.from_block(manifest.descriptor, self.store.get(manifest.descriptor))
        return manifest, data, descriptor

    def _load(self, key: IndexKey, entry: IndexEntry, builders: Role) -> Build:
        manifest, manifest_block, descriptor = self._blocks(entry.manifest)
        platform = self._platforms.get(descriptor.platform)
        if platform is None:
            platform = Platform.from_block(descriptor.platform, self.store.get(descriptor.platform))
            self._platforms[descriptor.platform] = platform
        cpv = key.cpv
        if manifest.cpv != cpv or descriptor.cpv != cpv:
            raise _Inconsistent(f"index key names {cpv}, its manifest {manifest.cpv}")
        if descriptor_digest(manifest.descriptor) != key.descriptor_digest:
            raise _Inconsistent(f"index key {key} does not name its manifest's descriptor")
        agreeing: set[str] = set()
        for link in entry.attestations:
            envelope, payload = load_signed_blocks(self.store, link)
            attestation = Attestation.from_blocks(envelope, payload, cid=link)
            check = check_attestation(
                attestation, role=builders, manifest=(entry.manifest, manifest)
            )
            if check.manifest_ok:
                agreeing.update(check.valid)
        return Build(
            manifest_cid=entry.manifest,
            manifest=manifest,
            package=Package(descriptor=descriptor, platform=platform),
            agreeing=tuple(sorted(agreeing)),
            manifest_block=manifest_block,
        )


class _Inconsistent(IpfsbinError):
    """An index key that does not describe the entry stored under it."""
