"""One followed index as last read, brought up to a new root by reading only its new nodes.

A :class:`TrackedIndex` keeps every entry (parsed, by key and by CPV) and
the shape of the tree it read: the children of each internal node and the
keys of each leaf, by CID. A node is its CID, so a subtree of the new root
whose CID was in the old tree holds the same entries and is not read; only
nodes new since the last root are fetched and decoded (each checked as
:class:`~ipfsbin.index.prolly.ProllyTree` checks it; with ``checked=True``
the canonical form sync proved is not proven again). The old tree is never
read again, so a node store that dropped it costs nothing. The keys of
the old leaves the new tree no longer reaches, against the entries of its
new leaves, are the changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.index._node import Node
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import IndexKey, parse_index_key
from ipfsbin.index.prolly import ProllyTree

__all__ = ["TrackedIndex"]

_Entry = tuple[IndexKey, IndexEntry]


@dataclass(kw_only=True)
class TrackedIndex:
    """The entries of the index at ``root``, by CPV, and the tree's shape."""

    root: CID | None = None
    by_key: dict[str, _Entry] = field(default_factory=dict)
    by_cpv: dict[str, dict[str, _Entry]] = field(default_factory=dict)
    """CPV -> index key (text) -> its entry (every state)."""
    cps: dict[str, str] = field(default_factory=dict)
    """CPV -> its category/package."""
    dropped: list[IndexEntry] = field(default_factory=list)
    """The entries the last move removed or replaced."""
    _raw: dict[str, dagcbor.Value] = field(default_factory=dict)
    """Index key -> the entry as its node holds it: an unchanged one is not parsed again."""
    _inner: dict[CID, tuple[CID, ...]] = field(default_factory=dict)
    _leaves: dict[CID, tuple[str, ...]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.by_key)

    def move_to(self, tree: ProllyTree, root: CID) -> set[str]:
        """Read ``root``'s new nodes and apply what changed; the CPVs whose entries changed.

        ``IpfsbinError`` when a node is missing or malformed; nothing is changed then.
        """
        if root == self.root:
            return set()
        inner: dict[CID, tuple[CID, ...]] = {}
        leaves: dict[CID, tuple[str, ...]] = {}
        added: dict[str, dagcbor.Value] = {}
        stack: list[tuple[Node | None, int, CID]] = [(None, 0, root)]
        while stack:
            parent, position, cid = stack.pop()
            if cid in self._inner or cid in self._leaves:
                self._keep(cid, inner, leaves)
                continue
            node = tree.load(cid) if parent is None else tree.child(parent, position)
            if node.level == 0:
                leaves[cid] = tuple(node.keys)
                added.update(zip(node.keys, node.values, strict=True))
            else:
                inner[cid] = tuple(node.children)
                stack.extend((node, i, child) for i, child in enumerate(node.children))
        gone = [k for cid, keys in self._leaves.items() if cid not in leaves for k in keys]
        # everything new parsed before anything changes: a malformed entry leaves all as it was
        raw = self._raw
        # a kept value parsed as an entry (only strings, links and lists of links):
        # Python's == on such a value is the data model's equality (no 1 == 1.0 == True)
        fresh = {k: v for k, v in added.items() if k not in raw or v != raw[k]}
        entries = {k: IndexEntry.from_dag(v) for k, v in fresh.items()}
        parsed = {k: parse_index_key(k) for k in fresh if k not in self.by_key}
        changed: set[str] = set()
        self.dropped = []
        for key in gone:
            if key not in added:
                changed.add(self._remove(key))
        for key, entry in entries.items():
            old = self.by_key.get(key)
            if old is not None:
                self.dropped.append(old[1])
            changed.add(self._put(key, entry, parsed[key] if old is None else old[0]))
            self._raw[key] = fresh[key]
        self.root, self._inner, self._leaves = root, inner, leaves
        return changed

    def _keep(
        self, cid: CID, inner: dict[CID, tuple[CID, ...]], leaves: dict[CID, tuple[str, ...]]
    ) -> None:
        """Carry the subtree ``cid`` of the old tree over, unread."""
        todo = [cid]
        while todo:
            at = todo.pop()
            keys = self._leaves.get(at)
            if keys is not None:
                leaves[at] = keys
                continue
            children = self._inner[at]
            inner[at] = children
            todo.extend(children)

    def _put(self, text: str, entry: IndexEntry, key: IndexKey) -> str:
        cpv = key.cpv
        found = self.by_cpv.get(cpv)
        if found is None:
            found = self.by_cpv[cpv] = {}
            self.cps[cpv] = f"{key.category}/{key.package}"
        found[text] = self.by_key[text] = (key, entry)
        return cpv

    def _remove(self, text: str) -> str:
        key, entry = self.by_key.pop(text)
        del self._raw[text]
        self.dropped.append(entry)
        cpv = key.cpv
        found = self.by_cpv[cpv]
        del found[text]
        if not found:
            del self.by_cpv[cpv], self.cps[cpv]
        return cpv
