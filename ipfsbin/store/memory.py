"""A block store in a dict: for unit tests of pure data structures and for counting I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError

__all__ = ["MemoryBlockStore"]


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

    def discard(self, cids: Iterable[CID]) -> None:
        """Forget these blocks (those not held are ignored)."""
        for cid in cids:
            self._blocks.pop(cid, None)

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[CID]:
        return iter(self._blocks)

    def total_bytes(self) -> int:
        return sum(len(b) for b in self._blocks.values())
