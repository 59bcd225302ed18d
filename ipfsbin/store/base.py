"""The block-store interface the domain layers are written against.

Domain code (index, trust, subscribe) takes a :class:`BlockStore`, never a
Kubo client, so the same code runs over Kubo and over memory in unit tests.
Every store verifies what it hands out: ``get`` returns bytes that hash to the
CID asked for, or raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError

__all__ = ["BlockStore", "MemoryBlockStore", "get_value", "put_value"]


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


class MemoryBlockStore:
    """A dict of blocks, for unit tests of pure data structures and for counting I/O."""

    def __init__(self) -> None:
        self._blocks: dict[CID, bytes] = {}
        self.gets = 0
        self.puts = 0

    def get(self, cid: CID) -> bytes:
        self.gets += 1
        try:
            return self._blocks[cid]
        except KeyError:
            raise BlockNotFoundError(f"block {cid} is not in the store") from None

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        cid = cid_for(codec, data)
        self.puts += 1
        self._blocks[cid] = data
        return cid

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        for cid, data in blocks:
            if not cid.verify(data):
                raise BlockMismatchError(f"block bytes do not hash to {cid}")
            self.puts += 1
            self._blocks[cid] = data

    def has(self, cid: CID) -> bool:
        return cid in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[CID]:
        return iter(self._blocks)

    def total_bytes(self) -> int:
        return sum(len(b) for b in self._blocks.values())


def get_value(store: BlockStore, cid: CID) -> dagcbor.Value:
    """Fetch and strictly decode a DAG-CBOR block."""
    return dagcbor.decode_block(cid, store.get(cid))


def put_value(store: BlockStore, value: dagcbor.Value) -> CID:
    """Encode ``value`` as DAG-CBOR and store it."""
    cid, data = dagcbor.encode_block(value)
    store.put_many([(cid, data)])
    return cid
