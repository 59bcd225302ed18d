"""The ``indexed`` sharing filter: does a followed index already have these bytes?

A build is looked up under its own index key (platform, CPV, descriptor;
``schema/index.md``) in the index tree of every followed head, read from the
follower's local blocks. An entry there with the same manifest is the same
build; an entry with another manifest (another builder's) is the same bytes
when the manifest's sha256 is this file's. Publishing those bytes again
would only add a second copy of what the index already serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ipfsbin.catalog.heads import FollowedHead
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore

__all__ = ["BuildIdentity", "FollowedIndexes"]


@dataclass(frozen=True, kw_only=True)
class BuildIdentity:
    """What the lookup needs of a checked build."""

    platform: CID
    descriptor: CID
    cpv: str
    manifest: CID
    sha256: bytes


class FollowedIndexes:
    """Looks builds up in the followed heads; ``heads`` is asked again every ``refresh`` s.

    ``local`` holds the index nodes (the follower's blocks); ``fetch`` gets
    another builder's manifest by CID.
    """

    def __init__(
        self,
        heads: Callable[[], Sequence[FollowedHead]],
        *,
        local: BlockStore,
        fetch: BlockStore,
        refresh: float = 30.0,
    ) -> None:
        self._heads = heads
        self._local = local
        self._fetch = fetch
        self._refresh = refresh
        self._cached: tuple[float, Sequence[FollowedHead]] | None = None

    def heads(self) -> Sequence[FollowedHead]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self._refresh:
            self._cached = (now, self._heads())
        return self._cached[1]

    def find(self, build: BuildIdentity) -> str | None:
        """Where a followed index has these bytes, in words; None when none has."""
        key = index_key(build.platform, build.cpv, build.descriptor)
        tree = ProllyTree(self._local)
        for head in self.heads():
            value = tree.get(head.index_root, key)
            if value is None:
                continue
            entry = IndexEntry.from_dag(value)
            same = entry.manifest == build.manifest
            if not same:
                try:
                    theirs = Manifest.from_block(entry.manifest, self._fetch.get(entry.manifest))
                except IpfsbinError:
                    continue  # unreadable now: publishing ours is the safe side
                same = theirs.sha256 == build.sha256
            if same:
                return f"the followed index {head.name} already has these bytes (entry {key})"
        return None
