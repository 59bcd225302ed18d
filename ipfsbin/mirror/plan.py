"""What a mirror of one index pins: the follower's replica of the index, and its packages.

The index part is exactly what the follower holds for the subscription (the
head's commit, its trust roots, every index node), block by block: a
recursive pin of the head would also take every package of every platform
and all of history. IPFS Cluster pins recursively only (its REST API
overrides ``mode=direct``), so each of these blocks is pinned under its raw
alias: the same multihash with the ``raw`` codec, which has no links, so
its recursive pin holds that one block. Kubo stores blocks by multihash,
so the block then serves requests for its DAG-CBOR CID too. Each package the
policy keeps is pinned through its manifest and attestations, recursively
(they link the descriptor and the binpkg's UnixFS DAG). A yanked entry is
never wanted, so its pins go on the next round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ipfsbin.codec.cid import CID, RAW
from ipfsbin.index import ProllyTree
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import parse_index_key
from ipfsbin.kubo.pins import pin_name
from ipfsbin.store.base import BlockStore

__all__ = [
    "MirrorPolicy",
    "WantedPin",
    "changes",
    "index_pin_prefix",
    "kept_entries",
    "package_pin_prefix",
    "raw_alias",
    "wanted_pins",
]


@dataclass(frozen=True, kw_only=True)
class MirrorPolicy:
    """Which packages a mirror keeps: all, or those of the listed categories.

    ``most_requested``: of those, only the N builds most requested (the
    usage vote, :mod:`ipfsbin.mirror.vote`); None keeps them all.
    """

    categories: frozenset[str] = frozenset()
    most_requested: int | None = None

    def keeps(self, key: str) -> bool:
        if not self.categories:
            return True
        return parse_index_key(key).category in self.categories


@dataclass(frozen=True)
class WantedPin:
    """A recursive pin the mirror wants, and its name."""

    cid: CID
    name: str


def raw_alias(cid: CID) -> CID:
    """The block of ``cid`` as a leaf: same multihash, ``raw`` codec."""
    return CID.v1(RAW, cid.multihash)


def index_pin_prefix(index_name: str) -> str:
    """The start of every pin name a mirror makes for ``index_name``."""
    return pin_name("mirror", index_name) + ":"


def package_pin_prefix(index_name: str) -> str:
    """The start of the pin names of ``index_name``'s packages; the index key follows."""
    return pin_name("mirror", index_name, "package") + ":"


def kept_entries(
    index_root: CID, store: BlockStore, policy: MirrorPolicy
) -> list[tuple[str, IndexEntry]]:
    """The entries of the index ``policy`` keeps, by key: not yanked, of a kept category."""
    kept = []
    for key, value in ProllyTree(store).items(index_root):
        entry = IndexEntry.from_dag(value)
        if entry.state == "ok" and policy.keeps(key):
            kept.append((key, entry))
    return kept


def wanted_pins(
    index_name: str, *, held: Iterable[CID], entries: Iterable[tuple[str, IndexEntry]]
) -> dict[CID, WantedPin]:
    """Every pin the mirror of ``index_name`` should have, by CID: the index, and ``entries``."""
    wanted: dict[CID, WantedPin] = {}
    index_name_pin = pin_name("mirror", index_name, "index")
    for cid in held:
        alias = raw_alias(cid)
        wanted[alias] = WantedPin(alias, index_name_pin)
    for key, entry in entries:
        name = package_pin_prefix(index_name) + key
        for cid in (entry.manifest, *entry.attestations):
            wanted.setdefault(cid, WantedPin(cid, name))
    return wanted


def changes(
    wanted: Mapping[str, WantedPin], pinned: Mapping[str, str], prefix: str
) -> tuple[list[WantedPin], list[str]]:
    """What to pin (wanted, not pinned) and unpin (pinned under ``prefix``, not wanted)."""
    to_pin = [pin for cid, pin in wanted.items() if cid not in pinned]
    to_unpin = [
        cid for cid, name in pinned.items() if name.startswith(prefix) and cid not in wanted
    ]
    return to_pin, to_unpin
