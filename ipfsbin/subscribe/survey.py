"""Which platforms of an index this host could use: the scope of a host-scoped replica.

Index keys start with a platform id (a short form of the Platform block's
CID), so the ids are visible in the index nodes but what they stand for is
not. The survey walks the new index in key order and opens only the nodes
that may hold a platform not met before: a child whose key range starts and
ends under one known platform holds nothing new and is passed over, and so
is a node surveyed on an earlier sync (the state keeps them, with the
platforms under them). A platform met for the first time is read through the
first entry under it: entry -> manifest -> descriptor -> platform, each block
checked against its CID, and the platform's CID must give the id in the key.
Platform blocks are kept in the state, so each is read once per host.

On a first sync it opens the nodes where one platform ends and the next
begins (about two per platform); an update touching only other platforms
opens the new nodes on those boundaries, usually none or one or two.
The replica then keeps the platforms the host's fit accepts
(:func:`ipfsbin.descriptor.compat.check_platform`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.compat import Compatibility
from ipfsbin.descriptor.model import Descriptor, Platform
from ipfsbin.errors import IpfsbinError, SchemaError
from ipfsbin.index._node import Node
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import platform_id
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.index.scope import EVERYTHING, KeyScope
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.state import SubscriptionStore

__all__ = ["HostScope", "PlatformFit", "Survey", "survey_scope"]

PlatformFit = Callable[[Platform], Compatibility]
"""Whether some build of a platform could be installed here (the host's side of the scope)."""


class HostScope:
    """Keep the platforms this host's fit accepts; the ids are learnt from each new index.

    ``host`` reads the fit (Portage's view of this host) once, when a sync
    first needs it: a sync that fails earlier, or finds nothing new, never
    reads it. A host that cannot be read keeps the whole index, with a
    warning: keeping too much is safe, keeping too little would hide usable
    builds.
    """

    def __init__(self, host: Callable[[], PlatformFit]) -> None:
        self._host = host
        self._fit: PlatformFit | str | None = None

    def resolve(
        self, state: SubscriptionStore, name: str, store: BlockStore, index_root: CID
    ) -> tuple[KeyScope, str | None]:
        """The scope for ``index_root``, and a warning when the host could not be read."""
        if self._fit is None:
            try:
                self._fit = self._host()
            except IpfsbinError as exc:
                self._fit = exc.message
        if isinstance(self._fit, str):
            return EVERYTHING, f"keeping the whole index: this host cannot be read ({self._fit})"
        return survey_scope(state, name, store, index_root, self._fit).scope, None


@dataclass(frozen=True, kw_only=True)
class Survey:
    """The platforms of one index, which of them this host keeps, and why the rest are not."""

    scope: KeyScope
    platforms: int
    kept: int
    refused: dict[str, int] = field(default_factory=dict)
    """Platforms refused, by the first axis that refuses them (``chost``, ``isa``, ...)."""
    opened: int = 0
    """Index nodes opened to learn the platforms (held ones are read locally)."""
    resolved: int = 0
    """Platforms met for the first time on this host (three blocks read for each)."""

    def to_json(self) -> dict[str, object]:
        return {
            "platforms": self.platforms,
            "kept": self.kept,
            "refused": dict(sorted(self.refused.items())),
            "opened": self.opened,
            "resolved": self.resolved,
        }


def _pid(key: str) -> str:
    return key.split("/", 1)[0]


class _Walk:
    def __init__(
        self,
        store: BlockStore,
        known: dict[str, tuple[CID, bytes]],
        skip: dict[CID, tuple[str, ...]],
    ) -> None:
        self.tree = ProllyTree(store, cache_size=0)
        self.store = store
        self.known = known
        self.skip = skip
        self.new: dict[str, tuple[CID, bytes]] = {}
        self.surveyed: dict[CID, tuple[str, ...]] = {}
        self.opened = 0

    def node(self, node: Node, lower: str | None) -> set[str]:
        """The platform ids under ``node`` (its keys lie after ``lower``)."""
        self.opened += 1
        found: set[str] = set()
        if node.level == 0:
            for key, value in zip(node.keys, node.values, strict=True):
                pid = _pid(key)
                found.add(pid)
                if pid not in self.known:
                    self._resolve(pid, key, value)
            return found
        for position, child in enumerate(node.children):
            after = lower if position == 0 else node.keys[position - 1]
            last = _pid(node.keys[position])
            if after is not None and _pid(after) == last and last in self.known:
                found.add(last)  # one known platform from end to end: nothing new inside
                continue
            if child in self.skip:
                self.surveyed[child] = self.skip[child]
                found.update(self.skip[child])
                continue
            under = self.node(self.tree.child(node, position), after)
            self.surveyed[child] = tuple(sorted(under))
            found |= under
        return found

    def _resolve(self, pid: str, key: str, value: dagcbor.Value) -> None:
        entry = IndexEntry.from_dag(value)
        manifest = Manifest.from_block(entry.manifest, self.store.get(entry.manifest))
        descriptor = Descriptor.from_block(manifest.descriptor, self.store.get(manifest.descriptor))
        data = self.store.get(descriptor.platform)
        Platform.from_block(descriptor.platform, data)
        if platform_id(descriptor.platform) != pid:
            raise SchemaError(
                f"index entry {key!r} links the platform {descriptor.platform}, "
                f"whose id is {platform_id(descriptor.platform)}, not {pid}"
            )
        self.known[pid] = self.new[pid] = (descriptor.platform, data)


def survey_scope(
    state: SubscriptionStore,
    name: str,
    store: BlockStore,
    index_root: CID,
    fits: PlatformFit,
) -> Survey:
    """Survey the index ``index_root`` of ``name``; records what it learnt in ``state``."""
    walk = _Walk(store, state.known_platforms(), state.surveyed(name))
    present = walk.node(walk.tree.load(index_root), None)
    kept: list[str] = []
    refused: Counter[str] = Counter()
    for pid in sorted(present):
        cid, data = walk.known[pid]
        verdict = fits(Platform.from_block(cid, data))
        if verdict.ok:
            kept.append(pid)
        else:
            refused[verdict.mismatches[0].axis] += 1
    survey = Survey(
        scope=KeyScope.of_platforms(kept),
        platforms=len(present),
        kept=len(kept),
        refused=dict(refused),
        opened=walk.opened,
        resolved=len(walk.new),
    )
    state.record_survey(name, platforms=walk.new, surveyed=walk.surveyed, summary=survey.to_json())
    return survey
