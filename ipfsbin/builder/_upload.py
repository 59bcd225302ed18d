"""Removing a file that ``publish`` added to Kubo and then found it must not publish.

Kubo's ``add`` stores the file's UnixFS DAG (a ``raw`` leaf, or a ``dag-pb``
tree over raw 1 MiB leaves) and one more block beside it. Nothing names the
file yet (no manifest, no attestation), so when a check fails after the add
its blocks are deleted rather than left for ``ipfs repo gc``. Kubo's
``block rm`` refuses any block that a pin still needs, so a file someone
else pinned stays whole.
"""

from __future__ import annotations

from ipfsbin.codec.cid import CID, DAG_PB, RAW, cid_for
from ipfsbin.codec.protobuf import bytes_field, varint_field
from ipfsbin.codec.unixfs import decode_dag_pb
from ipfsbin.errors import CodecError, KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.records import AddResult

__all__ = ["adder_directory", "dag_pb_links", "remove_added_file"]


def dag_pb_links(data: bytes) -> list[CID]:
    """The link CIDs of a dag-pb node, in order; CodecError if bad."""
    return list(decode_dag_pb(data).links)


def adder_directory(added: AddResult) -> CID:
    """The extra block Kubo's ``add`` stores beside a file: the one-entry directory around it.

    Kubo 0.39 builds an MFS directory holding the file under its CID's text
    and stores that dag-pb node under a ``raw`` CID; nothing links to it.
    Should another Kubo build it differently, this CID names no block and
    that directory is left for ``ipfs repo gc``.
    """
    link = (
        bytes_field(1, added.cid.bytes)
        + bytes_field(2, str(added.cid).encode())
        + varint_field(3, added.dag_size)
    )
    # PBNode: Links before Data; Data is the UnixFS message {Type: Directory}.
    return cid_for(RAW, bytes_field(2, link) + bytes_field(1, b"\x08\x01"))


def remove_added_file(client: KuboClient, added: AddResult) -> None:
    """Delete the blocks of a file added unpinned, unless it is pinned; best effort.

    Call after removing this run's own pin of it. Failures are swallowed:
    the caller is reporting the error that made it undo, and whatever stays
    behind is unpinned and named by nothing, so ``ipfs repo gc`` takes it.
    """
    try:
        if client.is_pinned(added.cid, pin_type="recursive"):
            return
        blocks, pending = [added.cid, adder_directory(added)], [added.cid]
        while pending:
            cid = pending.pop()
            if cid.codec == DAG_PB:
                links = dag_pb_links(client.block_get(cid, offline=True))
                blocks += links
                pending += links
    except (KuboError, CodecError):
        return
    try:
        client.block_rm(blocks)
    except KuboError:
        # Some block is pinned elsewhere (or already gone): remove the rest one by one.
        for cid in blocks:
            try:
                client.block_rm([cid])
            except KuboError:
                continue
