"""The index: a prolly tree from build keys to entries, stored as DAG-CBOR blocks."""

from ipfsbin.index._node import DEFAULT_PARAMS, NODE_TYPE, ChunkParams
from ipfsbin.index.diff import Change, diff
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import (
    IndexKey,
    descriptor_digest,
    index_key,
    package_prefix,
    parse_index_key,
    platform_id,
    platform_prefix,
    short_id,
)
from ipfsbin.index.prolly import ProllyTree, TreeStats, build, empty_root

__all__ = [
    "DEFAULT_PARAMS",
    "NODE_TYPE",
    "Change",
    "ChunkParams",
    "IndexEntry",
    "IndexKey",
    "ProllyTree",
    "TreeStats",
    "build",
    "descriptor_digest",
    "diff",
    "empty_root",
    "index_key",
    "package_prefix",
    "parse_index_key",
    "platform_id",
    "platform_prefix",
    "short_id",
]
