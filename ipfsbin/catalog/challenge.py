"""``ipfsbin challenge``: this host's own builds against the builders' attestations.

A local build is a binpkg in PKGDIR (:mod:`ipfsbin.builder.local`), or a
package installed from a binary: the build in a followed index whose
manifest MD5 is the one Portage recorded when it merged the package
(:func:`installed_builds`); its manifest's sha256 is then this host's hash.
For each local build, the entry with the same
index key (the same descriptor on the same platform) is looked up in every
followed head; its attestations count when a key of that index's builders
role signed them (as the catalog counts them). The local sha256 and each
builder's form one challenge item (:mod:`ipfsbin.maintainer.challenge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ipfsbin.builder.local import LocalBuild
from ipfsbin.catalog.heads import FollowedHead
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.challenge import ChallengeItem, ChallengeReport, challenge_item
from ipfsbin.maintainer.repro import load_attestations, reproducibility
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.attestation import Attestation

__all__ = ["challenge_builds", "challenge_host", "installed_builds"]

INSTALLED: Final = "installed binary"


def _challenge_one(
    build: LocalBuild, heads: Sequence[FollowedHead], held: BlockStore, store: BlockStore
) -> ChallengeItem:
    tree = ProllyTree(held)
    found: dict[CID, tuple[Attestation, tuple[str, ...]]] = {}
    listed: list[str] = []
    problems: list[str] = []
    for head in heads:
        try:
            value = tree.get(head.index_root, build.key)
            if value is None:
                continue
            entry = IndexEntry.from_dag(value)
            loaded = load_attestations(store, entry.attestations, head.builders)
        except IpfsbinError as exc:
            problems.append(f"{head.name}: {exc.message}")
            continue
        listed.append(head.name if entry.state == "ok" else f"{head.name} (yanked)")
        for attestation, signers in loaded:
            before = found.get(attestation.cid, (attestation, ()))[1]
            found[attestation.cid] = (attestation, tuple(sorted({*before, *signers})))
    view = reproducibility(found.values())
    where = f"in {', '.join(listed)}" if listed else "no followed index lists this build"
    note = "; ".join([f"{build.origin} here", where, *problems])
    return challenge_item(build.cpv, build.key, view, local=build.sha256, note=note)


def challenge_builds(
    builds: Sequence[LocalBuild],
    heads: Sequence[FollowedHead],
    *,
    held: BlockStore,
    store: BlockStore,
    extra: Sequence[ChallengeItem] = (),
) -> ChallengeReport:
    """The report of ``builds`` (and ``extra`` items as they are): index nodes read from
    ``held``, attestations from ``store``."""
    return ChallengeReport.of([*(_challenge_one(b, heads, held, store) for b in builds), *extra])


def _manifests(store: BlockStore, entry: IndexEntry) -> list[Manifest]:
    """The entry's manifest, then those its attestations state: builders who disagree
    each name their own, and an entry keeping both lists one of them as its manifest."""
    cids = [entry.manifest]
    for attestation, _ in load_attestations(store, entry.attestations):
        if attestation.statement.manifest not in cids:
            cids.append(attestation.statement.manifest)
    return [Manifest.from_block(cid, store.get(cid)) for cid in cids]


def installed_builds(
    installed: Mapping[str, str],
    heads: Sequence[FollowedHead],
    *,
    held: BlockStore,
    store: BlockStore,
) -> tuple[list[LocalBuild], list[ChallengeItem]]:
    """The builds ``installed`` (CPV -> binpkg MD5 hex) were merged from, found by MD5.

    Returns those found, and an inconclusive item for each package that no
    followed index has a build of with that MD5 (installed from elsewhere).
    """
    found: dict[str, LocalBuild] = {}
    for head in heads:
        for key, value in ProllyTree(held).items(head.index_root):
            cpv = parse_index_key(key).cpv
            md5 = installed.get(cpv)
            if md5 is None or cpv in found:
                continue
            for manifest in _manifests(store, IndexEntry.from_dag(value)):
                if manifest.md5.hex() == md5:
                    found[cpv] = LocalBuild(
                        path=None, cpv=cpv, key=key, sha256=manifest.sha256, origin=INSTALLED
                    )
                    break
    missing = [
        ChallengeItem(
            cpv=cpv,
            key="",
            builders=(),
            note=f"{INSTALLED} (MD5 {installed[cpv]}) that no followed index lists",
        )
        for cpv in sorted(set(installed) - set(found))
    ]
    return list(found.values()), missing


def challenge_host(
    builds: Sequence[LocalBuild],
    installed: Mapping[str, str],
    heads: Sequence[FollowedHead],
    *,
    held: BlockStore,
    store: BlockStore,
) -> ChallengeReport:
    """The report of this host's PKGDIR ``builds`` and ``installed`` binaries (CPV -> MD5)."""
    merged, unknown = installed_builds(installed, heads, held=held, store=store)
    # a binpkg both kept in PKGDIR and installed is one build
    kept = {(b.key, b.sha256) for b in builds}
    every = [*builds, *(b for b in merged if (b.key, b.sha256) not in kept)]
    return challenge_builds(every, heads, held=held, store=store, extra=unknown)
