"""Removing a file that ``publish`` added to Kubo and then found it must not publish.

Kubo's ``add`` stores the file's UnixFS DAG (a ``raw`` leaf, or a ``dag-pb``
tree over raw 1 MiB leaves) and one more block beside it. Nothing names the
file yet (no manifest, no attestation), so when a check fails after the add
its blocks are deleted rather than left for ``ipfs repo gc``. Kubo's
``block rm`` refuses any block that a pin still needs, so a file someone
else pinned stays whole.
"""

from __future__ import annotations

from collections.abc import Iterator

from ipfsbin.codec.cid import CID, DAG_PB, RAW, cid_for
from ipfsbin.codec.varint import decode_varint, encode_varint
from ipfsbin.errors import CodecError, KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.records import AddResult

__all__ = ["adder_directory", "dag_pb_links", "remove_added_file"]


def _pb_fields(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, bytes) of a protobuf message's length-delimited fields; varints skipped."""
    pos = 0
    while pos < len(buf):
        tag, pos = decode_varint(buf, pos)
        if tag & 7 == 0:
            _, pos = decode_varint(buf, pos)
            continue
        length, pos = decode_varint(buf, pos)
        if tag & 7 != 2 or pos + length > len(buf):
            raise CodecError(f"dag-pb: malformed field (tag {tag}) at byte {pos}")
        yield tag >> 3, buf[pos : pos + length]
        pos += length


def dag_pb_links(data: bytes) -> list[CID]:
    """The link CIDs of a dag-pb node (PBNode.Links = 2, PBLink.Hash = 1); CodecError if bad."""
    return [
        CID(raw)
        for number, link in _pb_fields(data)
        if number == 2
        for field, raw in _pb_fields(link)
        if field == 1
    ]


def _pb_bytes(number: int, value: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(value)) + value


def adder_directory(added: AddResult) -> CID:
    """The extra block Kubo's ``add`` stores beside a file: the one-entry directory around it.

    Kubo 0.39 builds an MFS directory holding the file under its CID's text
    and stores that dag-pb node under a ``raw`` CID; nothing links to it.
    Should another Kubo build it differently, this CID names no block and
    that directory is left for ``ipfs repo gc``.
    """
    link = (
        _pb_bytes(1, added.cid.bytes)
        + _pb_bytes(2, str(added.cid).encode())
        + encode_varint(3 << 3)
        + encode_varint(added.dag_size)
    )
    # PBNode: Links before Data; Data is the UnixFS message {Type: Directory}.
    return cid_for(RAW, _pb_bytes(2, link) + _pb_bytes(1, b"\x08\x01"))


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
