"""What a follower holds of an index, and lookups that tell "not held" from "absent".

A partial replica (:class:`~ipfsbin.index.scope.KeyScope`) keeps some
platforms' key ranges. A key outside them may well be in the index: a
lookup there says so (:class:`NotHeld`) instead of answering "absent".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from ipfsbin.codec import dagcbor
from ipfsbin.errors import SubscriptionError
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.index.scope import KeyScope
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.state import Subscription, SubscriptionStore

__all__ = ["Holding", "NotHeld", "holding", "lookup"]


class NotHeld(SubscriptionError):
    """The key lies outside the ranges this replica keeps: it may or may not be in the index."""


@dataclass(frozen=True, kw_only=True)
class Holding:
    """How much of a subscription's index is held, and why (its scope)."""

    name: str
    scope: KeyScope
    held_blocks: int
    index_entries: int | None
    policy: str = "full"
    """The replica policy the next sync follows: ``host`` or ``full``."""
    survey: Mapping[str, object] | None = None
    """The last survey of the index's platforms (:meth:`Survey.to_json`), for ``host``."""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "policy": self.policy,
            "scope": "everything" if self.scope.everything else "platforms",
            "prefixes": self.scope.to_json(),
            "held_blocks": self.held_blocks,
            "index_entries": self.index_entries,
            "survey": None if self.survey is None else dict(self.survey),
        }

    def describe(self) -> str:
        entries = "?" if self.index_entries is None else str(self.index_entries)
        held = f"{self.held_blocks} blocks of an index of {entries} entries"
        if self.scope.everything:
            return f"{held}, all of it (replica policy {self.policy})"
        why = self.scope.describe()
        if self.survey is not None:
            refused = cast("Mapping[str, int]", self.survey.get("refused", {}))
            kept, seen = self.survey["kept"], self.survey["platforms"]
            why = f"{kept} of {seen} platforms this host could use"
            if refused:
                why += "; refused on " + ", ".join(f"{a}: {n}" for a, n in sorted(refused.items()))
        return f"{held}, a partial replica ({why})"


def holding(
    state: SubscriptionStore, sub: Subscription, local: BlockStore | None, policy: str = "full"
) -> Holding:
    """What ``sub`` holds; the entry count comes from the root node when ``local`` has it."""
    entries: int | None = None
    if local is not None and sub.index_root is not None and local.has(sub.index_root):
        entries = ProllyTree(local, cache_size=0).count(sub.index_root)
    return Holding(
        name=sub.name,
        scope=state.scope(sub.name),
        held_blocks=len(state.held(sub.name)),
        index_entries=entries,
        policy=policy,
        survey=state.survey(sub.name),
    )


def lookup(
    state: SubscriptionStore, sub: Subscription, local: BlockStore, key: str
) -> dagcbor.Value | None:
    """The entry under ``key`` in the accepted index (None: absent); ``NotHeld`` outside scope."""
    if sub.index_root is None:
        raise SubscriptionError(
            f"no head accepted yet for {sub.name}", hint="run `ipfsbin sync` first"
        )
    scope = state.scope(sub.name)
    if not scope.holds(key):
        raise NotHeld(
            f"{key!r} is outside the platforms this replica of {sub.name} keeps "
            f"({scope.describe()})",
            hint="follow with every platform (a mirror) to look up any key",
        )
    return ProllyTree(local, cache_size=0).get(sub.index_root, key)
