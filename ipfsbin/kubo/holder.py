"""Holder DAGs: many blocks kept by one recursive pin, and nothing they link.

A direct pin costs Kubo a few synced datastore writes each (≈1 ms on a
quiet machine, 7 ms under load), so a follower holding 52,779 index nodes
would spend minutes pinning them one by one. A holder DAG holds them with
one recursive pin instead (``schema/subscription.md``, "Keep, record,
release"): dag-pb nodes of up to :data:`FANOUT` links under one dag-pb root,
every link a **raw** CID carrying a held block's multihash. Kubo keys blocks
by multihash, so a raw link reaches the stored block whatever its codec, and
a raw block has no links: the pin keeps exactly the listed blocks, never the
manifests and packages an index node links.

The links are sorted and the DAG is a pure function of the set, so the same
set always gives the same root. A holder is local only; it is never
published.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from ipfsbin.codec.cid import CID, DAG_PB, RAW, cid_for
from ipfsbin.codec.protobuf import bytes_field
from ipfsbin.errors import KuboStreamError
from ipfsbin.kubo.client import KuboClient

__all__ = ["FANOUT", "holder_blocks", "put_holder"]

FANOUT: Final = 4096
"""Links per holder node: about 160 KB, well under Kubo's 1 MiB block limit."""


def _dag_pb(links: Sequence[CID]) -> bytes:
    """A dag-pb node of links only (each PBLink with its Hash alone)."""
    return b"".join(bytes_field(2, bytes_field(1, link.bytes)) for link in links)


def holder_blocks(cids: Iterable[CID]) -> tuple[CID, list[bytes]]:
    """The holder DAG of ``cids``: its root and its blocks, the root last."""
    raw = sorted({CID.v1(RAW, c.multihash) for c in cids}, key=lambda c: c.bytes)
    blocks = [_dag_pb(raw[i : i + FANOUT]) for i in range(0, len(raw), FANOUT)]
    root = _dag_pb([cid_for(DAG_PB, b) for b in blocks])
    return cid_for(DAG_PB, root), [*blocks, root]


def put_holder(client: KuboClient, cids: Iterable[CID]) -> CID:
    """Store the holder DAG of ``cids`` in Kubo (unpinned); returns its root."""
    root, blocks = holder_blocks(cids)
    got = client.block_put_many(blocks, codec=DAG_PB)
    if got[-1] != root:
        raise KuboStreamError(f"Kubo stored the holder root as {got[-1]}, expected {root}")
    return root
