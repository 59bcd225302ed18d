"""The followed heads a catalog is built from, and whether each is still fresh enough to offer.

:func:`read_heads` reads the accepted heads from the subscriptions a
:class:`~ipfsbin.subscribe.follower.Follower` reports and the blocks it
holds for them (no network): sync verified them, the catalog only renders
them. Whether a head's commit and trust root are still unexpired is the
follower's one notion of freshness (:meth:`Follower.freshness
<ipfsbin.subscribe.follower.Follower.freshness>`, which also knows whether
``allow_stale`` was asked for); :func:`head_refusal` adds the client's own
``max_head_age`` and says why a head must not be offered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ipfsbin.codec.cid import CID
from ipfsbin.codec.fields import rfc3339
from ipfsbin.errors import IpfsbinError
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.commit import load_commit_payload
from ipfsbin.trust.freshness import Freshness
from ipfsbin.trust.root import load_root
from ipfsbin.trust.signing import Role

__all__ = ["FollowedHead", "head_refusal", "read_heads"]


@dataclass(frozen=True, kw_only=True)
class FollowedHead:
    """One subscription's accepted head, as far as a catalog needs it."""

    name: str
    head: CID
    height: int
    index_root: CID
    commit_time: int
    freshness: Freshness | None
    """From the follower at the time the heads were read; None while the expiry is unknown."""
    root_version: int
    builders: Role
    accepted_at: float | None
    checked_at: float | None
    error: str | None
    """The last sync's failure, if the last check failed (the head stays the last good one)."""


def head_refusal(head: FollowedHead, *, now: float, max_age: int | None) -> str | None:
    """Why ``head`` must not be offered any more, or None while it may be."""
    fresh = head.freshness
    if fresh is None:
        return (
            f"the expiry of the head commit at height {head.height} is not recorded yet "
            "(`ipfsbin sync` records it)"
        )
    if not fresh.usable:
        return f"{fresh.warning()} (a frozen index is refused)"
    if fresh.allow_stale:
        return None
    if max_age is not None and head.commit_time + max_age <= now:
        return (
            f"head commit at height {head.height} was made at {rfc3339(head.commit_time)}, "
            f"older than policy.max_head_age ({max_age} s)"
        )
    return None


def read_head(
    sub: Subscription, local: BlockStore, freshness: Freshness | None
) -> FollowedHead | None:
    """The accepted head of ``sub`` read from ``local``; None before the first accepted sync."""
    if sub.head is None or sub.index_root is None or sub.height is None or not sub.roots:
        return None
    commit = load_commit_payload(local, sub.head)
    root = load_root(local, sub.roots[-1]).root
    return FollowedHead(
        name=sub.name,
        head=sub.head,
        height=sub.height,
        index_root=sub.index_root,
        commit_time=commit.time,
        freshness=freshness,
        root_version=root.version,
        builders=root.builders,
        accepted_at=sub.accepted_at,
        checked_at=sub.checked_at,
        error=sub.error,
    )


def read_heads(
    subs: list[Subscription],
    local: BlockStore,
    *,
    freshness: Callable[[str], Freshness | None],
    on_error: Callable[[Subscription, IpfsbinError], None] | None = None,
) -> list[FollowedHead]:
    """Every accepted head among ``subs`` whose blocks this host holds.

    ``freshness`` is the follower's verdict by subscription name (pass
    ``lambda name: follower.freshness(name, now=now)``).
    """
    heads = []
    for sub in subs:
        try:
            head = read_head(sub, local, freshness(sub.name))
        except IpfsbinError as exc:
            if on_error is not None:
                on_error(sub, exc)
            continue
        if head is not None:
            heads.append(head)
    return heads
