"""``ipfsbin challenge``: this host's own builds against the builders' attestations.

For each local build (:mod:`ipfsbin.builder.local`), the entry with the same
index key (the same descriptor on the same platform) is looked up in every
followed head; its attestations count when a key of that index's builders
role signed them (as the catalog counts them). The local sha256 and each
builder's form one challenge item (:mod:`ipfsbin.maintainer.challenge`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ipfsbin.builder.local import LocalBuild
from ipfsbin.catalog.heads import FollowedHead
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.challenge import ChallengeItem, ChallengeReport, challenge_item
from ipfsbin.maintainer.repro import load_attestations, reproducibility
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.attestation import Attestation

__all__ = ["challenge_builds"]


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
) -> ChallengeReport:
    """The report of ``builds``: index nodes read from ``held``, attestations from ``store``."""
    return ChallengeReport.of(_challenge_one(b, heads, held, store) for b in builds)
