"""Block stores: where DAG-CBOR blocks live (Kubo in production, memory in unit tests)."""

from ipfsbin.store.base import BlockStore, MemoryBlockStore, get_value, put_value

__all__ = ["BlockStore", "MemoryBlockStore", "get_value", "put_value"]
