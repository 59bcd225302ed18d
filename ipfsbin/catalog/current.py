"""The catalog of the heads a follower holds now, for the commands acting on it (pin, gc)."""

from __future__ import annotations

import time
from datetime import timedelta

from ipfsbin.catalog.build import Catalog
from ipfsbin.catalog.builder import build_catalog
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.catalog.heads import read_heads
from ipfsbin.config import ClientPolicy
from ipfsbin.errors import SubscriptionError
from ipfsbin.host.profile import HostInfo
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import Follower

__all__ = ["current_catalog"]


def current_catalog(
    follower: Follower,
    client: KuboClient,
    *,
    host: HostInfo,
    policy: ClientPolicy,
    offline: bool = False,
    fetch_timeout: float = 30.0,
) -> Catalog:
    """The catalog over ``follower``'s accepted heads; ``offline`` loads only the builds whose
    blocks this node holds (``gc`` never fetches), otherwise missing ones are fetched."""
    subs = follower.subscriptions()
    if not subs:
        raise SubscriptionError(
            "no subscriptions", hint="subscribe first: `ipfsbin subscribe NAME --root CID`"
        )
    now = time.time()
    heads = read_heads(
        subs, follower.held_blocks(), freshness=lambda name: follower.freshness(name, now=now)
    )
    store = KuboBlockStore(client, offline=offline, fetch_timeout=timedelta(seconds=fetch_timeout))
    return build_catalog(heads, host=host, policy=policy, cache=BuildCache(store), now=now)
