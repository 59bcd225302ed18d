"""What Kubo's pins keep, as the user sees it: blocks that survive ``repo gc``."""

from __future__ import annotations

from ipfsbin.codec.cid import DAG_PB
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import FOLLOW_HOLDER


def kept(client: KuboClient) -> set[bytes]:
    """The multihash of every block some pin keeps, directly, recursively or through one.

    Kubo keys blocks (and GC) by multihash, so a block a holder DAG reaches
    through a raw CID is kept whatever codec its own CID names.
    """
    return {p.cid.multihash for p in client.pin_ls(pin_type="all")}


def follower_kept(client: KuboClient) -> set[bytes]:
    """The multihash of every block the follower's pins (``ipfsbin:follow``) keep."""
    found: set[bytes] = set()
    for pin in client.pin_ls(pin_type="all"):
        if pin.name != FOLLOW_HOLDER:
            continue
        if pin.type == "recursive" and pin.cid.codec == DAG_PB:  # a holder DAG
            refs = client.refs(pin.cid, max_depth=2, offline=True)
            found.update(c.multihash for c in refs if c.codec != DAG_PB)
        else:
            found.add(pin.cid.multihash)
    return found
