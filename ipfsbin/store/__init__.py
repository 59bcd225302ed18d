"""Block stores: where DAG-CBOR blocks live (Kubo, a gateway's block file, memory in unit tests)."""

from ipfsbin.store.base import BlockStore, get_value, put_value
from ipfsbin.store.memory import MemoryBlockStore

__all__ = ["BlockStore", "MemoryBlockStore", "get_value", "put_value"]
