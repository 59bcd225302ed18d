"""The roots list a maintainer announces under its own IPNS name (``ipfsbin/roots/1``).

A follower learns of trust root rotations from the commit envelopes the
index's IPNS name points to; whoever holds that name could withhold them.
So maintainers also announce the root chain under their own keys' names
(``schema/trust.md``, "root announcements"). The list is unsigned: every
root in it is verified on its own, like the ``roots`` of a commit envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import expect_fields, expect_type, get_cid, get_list
from ipfsbin.errors import SchemaError
from ipfsbin.store.base import BlockStore

__all__ = [
    "MAX_ROOT_ENVELOPES",
    "ROOTS_TYPE",
    "RootList",
    "check_root_links",
    "load_root_list",
    "put_root_list",
]

ROOTS_TYPE: Final = "ipfsbin/roots/1"
MAX_ROOT_ENVELOPES: Final = 1024
"""Trust root envelopes one list (or one commit envelope) may name."""
_FIELDS: Final = frozenset({"type", "roots"})


def check_root_links(roots: tuple[CID, ...], what: str) -> None:
    """The rules every list of root envelopes follows: bounded, no repeats, dag-cbor links."""
    if len(roots) > MAX_ROOT_ENVELOPES:
        raise SchemaError(f"{what} lists {len(roots)} trust roots, at most {MAX_ROOT_ENVELOPES}")
    if len(set(roots)) != len(roots):
        raise SchemaError(f"{what} lists the same trust root twice")
    for root in roots:
        if not isinstance(root, CID) or root.codec != DAG_CBOR:
            raise SchemaError(f"{what} roots must link dag-cbor blocks, got {root!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RootList:
    """Root envelope CIDs, version 1 first (not verified: each root is, on its own)."""

    roots: tuple[CID, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.roots, tuple):
            raise TypeError(f"RootList.roots must be a tuple, not {type(self.roots).__name__}")
        if not self.roots:
            raise SchemaError("a roots list names at least one trust root")
        check_root_links(self.roots, "roots list")

    @classmethod
    def from_dag(cls, value: Value) -> RootList:
        expect_type(value, "roots list", ROOTS_TYPE)
        fields = expect_fields(value, "roots list", _FIELDS)
        listed = get_list(fields["roots"], "roots list roots")
        return cls(roots=tuple(get_cid(r, "roots list root", dag_cbor=True) for r in listed))

    def to_dag(self) -> dict[str, Value]:
        return {"type": ROOTS_TYPE, "roots": list(self.roots)}

    def block(self) -> tuple[CID, bytes]:
        return dagcbor.encode_block(self.to_dag())


def put_root_list(store: BlockStore, roots: Sequence[CID]) -> CID:
    cid, data = RootList(roots=tuple(roots)).block()
    store.put_many([(cid, data)])
    return cid


def load_root_list(store: BlockStore, cid: CID) -> RootList:
    return RootList.from_dag(dagcbor.decode_block(cid, store.get(cid)))
