"""Rebuilding a new head's index from the old one and the commits' changesets.

The prolly tree is a pure function of its entries, so applying a commit's
changeset (``ipfsbin.index.changeset``) to the index the follower already holds
writes exactly the maintainer's new nodes, and none of them need fetching.
Nothing here is trusted: the commit chain was verified before, and a
changeset is accepted only if the root it produces is the signed commit's
``index``. Any doubt refuses the shortcut (:class:`Refused`) and the caller
fetches the nodes instead.

New nodes are written to memory first and only those of the final tree go
to the local store, so a refused rebuild, or the trees between two commits
of a catch-up, leave nothing behind.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import BlockNotFoundError
from ipfsbin.index.changeset import Changeset, decode_part
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.netlimits import within_operation
from ipfsbin.store.base import BlockStore
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import TreeDelta, tree_delta
from ipfsbin.trust.commit import Commit, load_commit_payload

__all__ = ["MAX_CATCH_UP", "Metered", "Rebuild", "Refused", "rebuild_index"]

MAX_CATCH_UP: Final = 64
"""Commits a follower replays from changesets at most; further behind, it fetches nodes."""


class Refused(Exception):
    """The shortcut does not apply or did not give the signed root; ``str()`` says why."""


class Metered:
    """The fetching store, counting the blocks (and bytes) that came from the network.

    A block the local store holds is read from there and not counted, so the
    counts are what moved over the wire whichever path read it.
    """

    def __init__(self, store: BlockStore, local: BlockStore | None) -> None:
        self._store = store
        self._local = local
        self._lock = threading.Lock()
        self.blocks = 0
        self.bytes = 0

    def get(self, cid: CID) -> bytes:
        if self._local is not None and self._local.has(cid):
            try:
                return self._local.get(cid)
            except BlockNotFoundError:
                pass  # collected since has(): fetch it
        data = self._store.get(cid)
        with self._lock:
            self.blocks += 1
            self.bytes += len(data)
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        return self._store.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self._store.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self._store.has(cid)


class _Overlay:
    """Reads new blocks from memory, then prefetched ones, then the local store.

    Writes go only to memory (``fresh``).
    """

    def __init__(self, local: BlockStore) -> None:
        self.fresh = MemoryBlockStore()
        self.cached = MemoryBlockStore()
        self._local = local

    def get(self, cid: CID) -> bytes:
        if self.fresh.has(cid):
            return self.fresh.get(cid)
        if self.cached.has(cid):
            return self.cached.get(cid)
        return self._local.get(cid)

    def prefetch(self, cids: Iterable[CID], workers: int) -> None:
        """Read ``cids`` from the local store concurrently (each read is a round trip to Kubo)."""
        wanted = [
            c for c in dict.fromkeys(cids) if not self.fresh.has(c) and not self.cached.has(c)
        ]
        if not wanted:
            return
        if workers <= 1 or len(wanted) == 1:
            found = [self._local.get(c) for c in wanted]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(within_operation(self._local.get), wanted))
        self.cached.put_many(zip(wanted, found, strict=True))

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        return self.fresh.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.fresh.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self.fresh.has(cid) or self._local.has(cid)


@dataclass(frozen=True, kw_only=True)
class Rebuild:
    """A new index rebuilt locally: which commits were replayed and what was written."""

    commits: tuple[CID, ...]
    """Commit IDs whose changesets were applied, oldest first."""
    changeset_blocks: int
    changeset_bytes: int
    delta: TreeDelta
    """The new tree's nodes the old one lacks (all now in the local store), and the dropped."""
    bytes_written: int


def _replay_plan(
    fetch: BlockStore, head_id: CID, head: Commit, accepted: CID, limit: int
) -> list[tuple[CID, Commit]]:
    """The commits from just after ``accepted`` to ``head`` along first parents, oldest first."""
    plan: list[tuple[CID, Commit]] = [(head_id, head)]
    while True:
        commit_id, commit = plan[-1]
        if len(commit.parents) != 1:
            raise Refused(f"commit {commit_id} has {len(commit.parents)} parents")
        if not commit.changes:
            raise Refused(f"commit {commit_id} lists no changes")
        parent = commit.parents[0]
        if parent == accepted:
            break
        if len(plan) >= limit:
            raise Refused(f"more than {limit} commits behind the accepted head")
        plan.append((parent, load_commit_payload(fetch, parent)))
    plan.reverse()
    return plan


def _prefetch_paths(overlay: _Overlay, root: CID, keys: Sequence[str], workers: int) -> None:
    """Read, level by level and concurrently, the nodes on the paths to ``keys`` from ``root``.

    ``mutate`` would read them one after another; neighbours it also opens
    when a change moves a boundary are read on demand.
    """
    reader = ProllyTree(overlay, cache_size=0)
    frontier: dict[CID, list[str]] = {root: list(keys)}
    while frontier:
        overlay.prefetch(frontier, workers)
        below: dict[CID, list[str]] = {}
        leaves: list[CID] = []
        for cid, routed in frontier.items():
            node = reader.load(cid)
            if node.level == 0:
                continue
            last = len(node.keys) - 1
            for key in routed:
                child = node.children[min(bisect_left(node.keys, key), last)]
                below.setdefault(child, []).append(key)
            if node.level == 1:
                leaves.extend(below)  # read them, but no need to open leaves here
                below = {}
        overlay.prefetch(leaves, workers)
        frontier = below


def _fetch_parts(fetch: BlockStore, parts: tuple[CID, ...], workers: int) -> list[bytes]:
    if len(parts) == 1 or workers <= 1:
        return [fetch.get(cid) for cid in parts]
    with ThreadPoolExecutor(max_workers=min(workers, len(parts))) as pool:
        return list(pool.map(within_operation(fetch.get), parts))


def rebuild_index(
    fetch: BlockStore,
    local: BlockStore,
    *,
    head_id: CID,
    head: Commit,
    accepted: CID,
    accepted_index: CID,
    limit: int = MAX_CATCH_UP,
    workers: int = 8,
) -> Rebuild:
    """Replay the changesets from ``accepted`` (whose index is held in ``local``) to ``head``.

    ``fetch`` gets commits and changeset parts (from the network); ``local``
    holds the old tree and receives the new tree's nodes on success.
    Raises :class:`Refused` when the shortcut does not apply or a computed
    root differs from the commit's, and the store's or codec's errors when a
    block is missing or malformed; the caller falls back on each.
    """
    if not local.has(accepted_index):
        raise Refused(f"the accepted index {accepted_index} is not held locally")
    plan = _replay_plan(fetch, head_id, head, accepted, limit)
    overlay = _Overlay(local)
    tree = ProllyTree(overlay)
    current = accepted_index
    blocks = 0
    size = 0
    for commit_id, commit in plan:
        datas = _fetch_parts(fetch, commit.changes, workers)
        blocks += len(datas)
        size += sum(len(d) for d in datas)
        changes = Changeset.from_parts(
            [decode_part(cid, data) for cid, data in zip(commit.changes, datas, strict=True)]
        )
        if changes.base != current:
            raise Refused(
                f"the changeset of commit {commit_id} applies to index {changes.base}, "
                f"the follower holds {current}"
            )
        keys = sorted({key for key, _ in changes.upserts} | set(changes.deletes))
        _prefetch_paths(overlay, current, keys, workers)
        computed = tree.mutate(current, changes.upsert_map(), changes.deletes)
        if computed != commit.index:
            raise Refused(
                f"the changeset of commit {commit_id} gives index {computed}, "
                f"the commit says {commit.index}"
            )
        current = computed
    # old nodes too come from the overlay: those on the changed paths were prefetched
    delta = tree_delta(overlay, current, accepted_index, old_store=overlay, workers=workers)
    written = [(cid, overlay.get(cid)) for cid in delta.added]
    local.put_many(written)
    return Rebuild(
        commits=tuple(commit_id for commit_id, _ in plan),
        changeset_blocks=blocks,
        changeset_bytes=size,
        delta=delta,
        bytes_written=sum(len(data) for _, data in written),
    )
