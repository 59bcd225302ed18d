"""The changes one commit made to the index, so a follower can rebuild the new index itself.

A changeset is the exact batch the maintainer applied with
``ProllyTree.mutate``: entries upserted and keys deleted, against the index
root ``base``. Since a prolly tree is a pure function of its entries, a
follower holding the tree at ``base`` applies the same batch and gets the same
blocks, byte for byte, so it need not fetch them. The changeset needs no
trust of its own: the follower compares the root it computed with the signed
commit's ``index`` and throws the result away when they differ.

A large batch is split into *parts*, each its own block (< 1 MiB, the
largest block Kubo stores without forcing). Every part repeats ``base``;
the commit lists the parts in order; their upserts, read in order, are
strictly increasing by key, and so are their deletes. Wire format:
``schema/changeset.md``. Unknown fields are rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import expect_fields, expect_type, get_cid
from ipfsbin.errors import SchemaError
from ipfsbin.store.base import BlockStore

__all__ = [
    "CHANGESET_TYPE",
    "MAX_PARTS",
    "MAX_PART_BYTES",
    "PART_BUDGET",
    "Changeset",
    "ChangesetPart",
    "decode_part",
    "encode_part",
    "put_changeset",
    "split_changes",
]

CHANGESET_TYPE: Final = "ipfsbin/changeset/1"
MAX_PART_BYTES: Final = 1024 * 1024 - 1
"""The largest part block accepted: Kubo refuses blocks of 1 MiB and more unless forced."""
PART_BUDGET: Final = 256 * 1024
"""Bytes of encoded changes a writer puts in one part; one index entry is at most this big too,
so a part stays far below :data:`MAX_PART_BYTES`."""
MAX_PARTS: Final = 4096
"""Parts one commit may list (about 1 GiB of changes), bounding what a follower fetches."""

_FIELDS: Final = frozenset({"type", "base", "upserts", "deletes"})


def _strictly_increasing(keys: Sequence[str], what: str) -> None:
    for before, after in zip(keys, keys[1:], strict=False):
        if after <= before:
            raise SchemaError(
                f"{what} must be sorted by key without repeats: {after!r} after {before!r}"
            )


@dataclass(frozen=True, kw_only=True)
class ChangesetPart:
    """One block of a changeset: some of the upserts and deletes, all against ``base``."""

    base: CID
    upserts: tuple[tuple[str, Value], ...]
    deletes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.base, CID) or self.base.codec != DAG_CBOR:
            raise SchemaError(f"changeset base must link a dag-cbor index node, got {self.base!r}")
        if not isinstance(self.upserts, tuple) or not isinstance(self.deletes, tuple):
            raise TypeError("ChangesetPart.upserts and .deletes must be tuples")
        for pair in self.upserts:
            if not isinstance(pair, tuple) or len(pair) != 2 or type(pair[0]) is not str:
                raise SchemaError(f"a changeset upsert is a [key, value] pair, got {pair!r}")
        for key in self.deletes:
            if type(key) is not str:
                raise SchemaError(f"a changeset delete is a key string, got {key!r}")
        if not self.upserts and not self.deletes:
            raise SchemaError("a changeset part holds no change")
        upserted = [key for key, _ in self.upserts]
        _strictly_increasing(upserted, "changeset upserts")
        _strictly_increasing(self.deletes, "changeset deletes")
        both = set(upserted).intersection(self.deletes)
        if both:
            raise SchemaError(f"changeset both upserts and deletes {min(both)!r}")

    @classmethod
    def from_dag(cls, value: Value) -> ChangesetPart:
        expect_type(value, "changeset", CHANGESET_TYPE)
        fields = expect_fields(value, "changeset", _FIELDS)
        base = get_cid(fields["base"], "changeset base")
        upserts, deletes = fields["upserts"], fields["deletes"]
        if type(upserts) is not list or type(deletes) is not list:
            raise SchemaError("changeset upserts and deletes must be lists")
        pairs: list[tuple[str, Value]] = []
        for item in upserts:
            if type(item) is not list or len(item) != 2:
                raise SchemaError(f"a changeset upsert is a [key, value] pair, got {item!r}")
            pairs.append((item[0], item[1]))
        # key and delete types are checked by __post_init__, for decoded and built parts alike
        return cls(base=base, upserts=tuple(pairs), deletes=tuple(deletes))

    def to_dag(self) -> dict[str, Value]:
        return {
            "type": CHANGESET_TYPE,
            "base": self.base,
            "upserts": [[key, value] for key, value in self.upserts],
            "deletes": list(self.deletes),
        }


def encode_part(part: ChangesetPart) -> tuple[CID, bytes]:
    """The part's block and CID (``ValueError`` if a value is not a data-model value)."""
    return dagcbor.encode_block(part.to_dag())


def decode_part(cid: CID, data: bytes) -> ChangesetPart:
    """A part from its block, checked against ``cid``, the size limit and the schema."""
    if len(data) > MAX_PART_BYTES:
        raise SchemaError(
            f"changeset part {cid} is {len(data)} bytes, at most {MAX_PART_BYTES} are allowed"
        )
    return ChangesetPart.from_dag(dagcbor.decode_block(cid, data))


@dataclass(frozen=True, kw_only=True)
class Changeset:
    """A whole changeset: every part joined, ready for ``ProllyTree.mutate``."""

    base: CID
    upserts: tuple[tuple[str, Value], ...]
    deletes: tuple[str, ...]

    @classmethod
    def from_parts(cls, parts: Sequence[ChangesetPart]) -> Changeset:
        """Join ``parts`` (in the commit's order); they must share a base and stay sorted."""
        if not parts:
            raise SchemaError("a changeset has at least one part")
        if len(parts) > MAX_PARTS:
            raise SchemaError(f"a changeset has at most {MAX_PARTS} parts, got {len(parts)}")
        base = parts[0].base
        for number, part in enumerate(parts[1:], start=2):
            if part.base != base:
                raise SchemaError(
                    f"changeset part {number} applies to index {part.base}, "
                    f"part 1 to {base}; all parts share one base"
                )
        upserts = tuple(pair for part in parts for pair in part.upserts)
        deletes = tuple(key for part in parts for key in part.deletes)
        _strictly_increasing([key for key, _ in upserts], "changeset upserts across parts")
        _strictly_increasing(deletes, "changeset deletes across parts")
        both = {key for key, _ in upserts}.intersection(deletes)
        if both:
            raise SchemaError(f"changeset both upserts and deletes {min(both)!r}")
        return cls(base=base, upserts=upserts, deletes=deletes)

    @property
    def size(self) -> int:
        """Number of changes."""
        return len(self.upserts) + len(self.deletes)

    def upsert_map(self) -> dict[str, Value]:
        """The upserts as ``mutate`` takes them."""
        return dict(self.upserts)


def split_changes(
    base: CID,
    upserts: Mapping[str, Value],
    deletes: Iterable[str] = (),
    *,
    budget: int = PART_BUDGET,
) -> tuple[ChangesetPart, ...]:
    """The batch ``upserts``/``deletes`` on ``base`` as parts of about ``budget`` bytes each.

    Changes are taken in key order and a part is closed before the change
    that would take it over ``budget``, so the split is a pure function of
    the batch. Empty batch: no parts.
    """
    if budget < 1:
        raise ValueError(f"budget must be positive, got {budget}")
    removed = sorted(set(deletes))
    both = set(upserts).intersection(removed)
    if both:
        raise ValueError(f"key {min(both)!r} is both upserted and deleted")
    changes: list[tuple[str, bool, Value]] = [(k, True, upserts[k]) for k in sorted(upserts)]
    changes += [(k, False, None) for k in removed]
    changes.sort(key=lambda change: change[0])
    parts: list[ChangesetPart] = []
    pending_up: list[tuple[str, Value]] = []
    pending_del: list[str] = []
    used = 0
    for key, is_upsert, value in changes:
        size = len(dagcbor.encode([key, value] if is_upsert else key))
        if used and used + size > budget:
            parts.append(
                ChangesetPart(base=base, upserts=tuple(pending_up), deletes=tuple(pending_del))
            )
            pending_up, pending_del, used = [], [], 0
        if is_upsert:
            pending_up.append((key, value))
        else:
            pending_del.append(key)
        used += size
    if pending_up or pending_del:
        parts.append(
            ChangesetPart(base=base, upserts=tuple(pending_up), deletes=tuple(pending_del))
        )
    if len(parts) > MAX_PARTS:
        raise ValueError(f"the batch needs {len(parts)} changeset parts, at most {MAX_PARTS} fit")
    return tuple(parts)


def put_changeset(store: BlockStore, parts: Sequence[ChangesetPart]) -> tuple[CID, ...]:
    """Store the parts' blocks; their CIDs, in order, are what a commit's ``changes`` lists."""
    blocks = [encode_part(part) for part in parts]
    for cid, data in blocks:
        if len(data) > MAX_PART_BYTES:
            raise ValueError(f"changeset part {cid} encodes to {len(data)} bytes; lower the budget")
    store.put_many(blocks)
    return tuple(cid for cid, _ in blocks)
