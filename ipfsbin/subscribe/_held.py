"""Pin accounting: which blocks each subscription holds, and letting go of the rest.

Blocks are counted per subscription in the state (``held``): two
subscriptions sharing index nodes share one pin, released only when neither
holds the node. Keeping and releasing happen under the state's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError, IpfsbinError
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.keepers import Keeper
from ipfsbin.subscribe.state import Subscription, SubscriptionStore
from ipfsbin.trust.root import load_root

__all__ = ["adopt_held", "head_blocks", "release_leftovers", "unsubscribe"]

_log = logging.getLogger(__name__)


def release_leftovers(state: SubscriptionStore, name: str, keeper: Keeper) -> int:
    """Let go of what an unfinished sync of ``name`` left kept; call under the lock.

    Two kinds: blocks a sync kept for a head it never recorded (``pending``),
    and blocks a recorded head let go that were never released
    (``releasing``, a sync killed in between). Only those nobody holds are
    released. Returns how many.
    """
    released = 0
    leftover = state.pending(name)
    if leftover:
        free = state.unheld(leftover, besides=name)
        _log.info("%s: releasing %d blocks of an unfinished sync", name, len(free))
        keeper.release(free, label=name)
        state.clear_pending(name)
        released += len(free)
    letting_go = state.releasing(name)
    if letting_go:
        free = state.unheld(letting_go)
        _log.info("%s: releasing %d blocks an earlier sync let go", name, len(free))
        keeper.release(free, label=name)
        state.clear_releasing(name, letting_go)
        released += len(free)
    return released


def head_blocks(sub: Subscription, local: BlockStore) -> list[CID]:
    """The blocks the accepted head of ``sub`` needs, read from ``local`` only.

    Roots, the head's envelope and payload, and every index node reachable
    from the head's index in ``local`` (a subtree missing there is skipped).
    """
    if sub.head is None or sub.head_envelope is None:
        return []
    found: list[CID] = [sub.head_envelope, sub.head]
    for cid in sub.roots:
        found.append(cid)
        try:
            found.append(load_root(local, cid).root_id)
        except IpfsbinError:
            continue
    if sub.index_root is not None:
        tree = ProllyTree(local, cache_size=0)
        stack = [sub.index_root]
        while stack:
            cid = stack.pop()
            try:
                node = tree.load(cid)
            except BlockNotFoundError:
                continue  # not held here: nothing to release for it either
            found.append(cid)
            if node.level > 0:
                stack.extend(node.children)
    return found


def adopt_held(state: SubscriptionStore, sub: Subscription, local: BlockStore) -> None:
    """List the blocks of a head accepted before ``held`` existed (state version 1).

    Those blocks were kept already (pinned as ``ipfsbin-follow:<name>``); once
    listed, they are released by CID like any other. Call under the lock.
    """
    if sub.head is None or state.held(sub.name):
        return
    blocks = head_blocks(sub, local)
    _log.info("%s: adopting %d blocks kept by an earlier version", sub.name, len(blocks))
    state.adopt_held(sub.name, blocks)


def unsubscribe(
    state: SubscriptionStore,
    name: str,
    *,
    keepers: Sequence[Keeper],
    local_store: BlockStore | None = None,
) -> list[CID]:
    """Forget ``name`` and release, from every keeper, the blocks no other subscription holds.

    With no keepers nothing is released (the blocks stay kept). ``local_store``
    lets a subscription recorded before ``held`` existed list its blocks first.
    Returns the released blocks; if releasing fails, the subscription stays.
    """
    sub = state.get(name)
    with state.keeping():
        if keepers and local_store is not None:
            adopt_held(state, sub, local_store)
        free = state.releasable(sub.name) if keepers else []
        for keeper in keepers:
            keeper.release(free, label=sub.name)
        state.remove(sub.name)
    return free
