"""The usage vote of a mirror that keeps only the N most requested builds (``--most-requested``).

A build's vote is the number of peers providing its binpkg CID
(``routing/findprovs``, bounded in time): a client that installed the build
through ipfsbin keeps and provides it. The mirror's own node and the nodes
keeping the engine's copies are left out, or the mirror's pins would vote
for themselves. Builds are ranked by votes, most first, then by index key,
so equal votes always break the same way (``schema/mirror.md``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from ipfsbin.codec.cid import CID
from ipfsbin.index.entry import IndexEntry
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.providers import count_providers
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore

__all__ = ["Vote", "count_votes", "most_requested", "rank"]


@dataclass(frozen=True)
class Vote:
    """One build's vote: its index key and its providers (None: the search failed)."""

    key: str
    providers: int | None

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "providers": self.providers}


def rank(votes: Collection[Vote]) -> list[Vote]:
    """Most providers first (a failed search counts as none), then by index key."""
    return sorted(votes, key=lambda v: (-(v.providers or 0), v.key))


def most_requested(
    votes: Collection[Vote], n: int, pinned: Collection[str]
) -> tuple[list[Vote], frozenset[str]]:
    """The top ``n`` of ``votes``, and the keys the mirror keeps.

    The kept keys are the top ``n``'s, plus, when a search failed, every key
    in ``pinned`` (those the engine holds now): an unanswered search never
    drops a pin, so a routing outage cannot empty the mirror.
    """
    if n < 1:
        raise ValueError(f"most requested needs N of at least 1, got {n}")
    top = rank(votes)[:n]
    kept = {v.key for v in top}
    if any(v.providers is None for v in votes):
        kept |= set(pinned) & {v.key for v in votes}
    return top, frozenset(kept)


def count_votes(
    kubo: KuboClient,
    store: BlockStore,
    entries: Sequence[tuple[str, IndexEntry]],
    *,
    exclude: Collection[str],
    timeout: timedelta,
    workers: int = 16,
) -> list[Vote]:
    """The vote of each entry: providers of its manifest's binpkg, ``exclude`` left out.

    ``workers`` searches run side by side, each bounded by ``timeout``, so
    one count takes at most about ``ceil(len(entries) / workers) * timeout``.
    """
    if not entries:
        return []

    def binpkg(entry: IndexEntry) -> CID:
        return Manifest.from_block(entry.manifest, store.get(entry.manifest)).binpkg

    with ThreadPoolExecutor(max_workers=min(workers, len(entries))) as pool:
        binpkgs = list(pool.map(binpkg, (e for _, e in entries)))
    counts = count_providers(
        kubo, sorted(set(binpkgs), key=str), timeout=timeout, workers=workers, exclude=exclude
    )
    return [Vote(key, counts[cid]) for (key, _), cid in zip(entries, binpkgs, strict=True)]
