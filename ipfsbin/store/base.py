"""The block-store interface the domain layers are written against.

Domain code (index, trust, subscribe) takes a :class:`BlockStore`, never a
Kubo client, so the same code runs over Kubo and over memory in unit tests.
Every store verifies what it hands out: ``get`` returns bytes that hash to the
CID asked for, or raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR

__all__ = ["BlockStore", "get_value", "put_value"]


@runtime_checkable
class BlockStore(Protocol):
    def get(self, cid: CID) -> bytes:
        """The block's bytes, verified against ``cid``; ``BlockNotFoundError`` if absent."""
        ...

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        """Store ``data`` under its CIDv1 (sha2-256) and return that CID."""
        ...

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        """Store blocks whose CIDs the caller already computed (checked by the store)."""
        ...

    def has(self, cid: CID) -> bool: ...


def get_value(store: BlockStore, cid: CID) -> dagcbor.Value:
    """Fetch and strictly decode a DAG-CBOR block."""
    return dagcbor.decode_block(cid, store.get(cid))


def put_value(store: BlockStore, value: dagcbor.Value) -> CID:
    """Encode ``value`` as DAG-CBOR and store it."""
    cid, data = dagcbor.encode_block(value)
    store.put_many([(cid, data)])
    return cid
