"""How many other peers provide each of some CIDs: the usage vote ``weather`` and ``mirror`` read.

A client that installed a package through ipfsbin keeps its binpkg and
provides it, so the providers of a binpkg CID count the hosts using that
build. Searches are bounded in time: a count is what was found in time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboError
from ipfsbin.kubo.client import KuboClient

__all__ = ["count_providers"]


def count_providers(
    client: KuboClient,
    cids: Sequence[CID],
    *,
    timeout: timedelta = timedelta(seconds=10),
    workers: int = 8,
    exclude: Collection[str] = (),
) -> dict[CID, int | None]:
    """Other peers providing each of ``cids``; None where the search failed.

    This node and the peer IDs in ``exclude`` are left out. The searches run
    ``workers`` side by side, each bounded by ``timeout``.
    """
    left_out = {client.id().peer_id, *exclude}

    def one(cid: CID) -> int | None:
        try:
            found = client.routing_findprovs(cid, timeout=timeout)
        except KuboError:
            return None
        return len(set(found) - left_out)

    if not cids:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(cids)))) as pool:
        return dict(zip(cids, pool.map(one, cids), strict=True))
