"""Re-verifying a maintainer's whole chain, from the trust root to the head.

The trust-root chain is checked version by version from version 1. Every
accepted commit whose envelope this workspace recorded is fed, oldest first,
to a :class:`~ipfsbin.trust.state.TrustedChain` pinned to the root the commit
names: signatures, heights and ancestry are checked as a follower of that
time checked them. Old commits expire by design, so the history walk allows stale
commits, and the head is checked once more on its own for expiry. Commits
whose envelope is not recorded here are vouched for by the hash links from
the head (as in git) and reported as such. Finally every entry of the head's
index must decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError, IpfsbinError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.commit import iter_history
from ipfsbin.trust.state import RootPin, TrustedChain

__all__ = ["VerifyReport", "verify_index"]


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    ok: bool
    root: CID
    root_version: int
    head: CID | None
    height: int
    checked: int
    """Commits whose signatures were checked."""
    linked_only: tuple[CID, ...]
    """Commit IDs vouched for only by hash links (no envelope recorded here)."""
    entries: int
    problem: str | None = None

    def verdict(self) -> str:
        if not self.ok:
            return f"FAILED: {self.problem}"
        extra = (
            f", {len(self.linked_only)} more vouched for by hash links" if self.linked_only else ""
        )
        return (
            f"OK: {self.checked} commit(s) verified under trust root version "
            f"{self.root_version}{extra}; head at height {self.height} with "
            f"{self.entries} entries"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict(),
            "root": str(self.root),
            "root_version": self.root_version,
            "head": None if self.head is None else str(self.head),
            "height": self.height,
            "checked": self.checked,
            "linked_only": [str(c) for c in self.linked_only],
            "entries": self.entries,
            "problem": self.problem,
        }


def verify_index(workspace: Workspace, store: BlockStore, *, now: int) -> VerifyReport:
    """Check the chain; the report says OK or names the first problem (never raises for it)."""
    root = workspace.signed_root
    head = workspace.head_commit
    checked = 0
    linked_only: list[CID] = []
    entries = 0
    base: dict[str, Any] = {
        "root": root.cid,
        "root_version": root.version,
        "head": None if head is None else head.cid,
        "height": 0 if head is None else head.height,
    }
    try:
        roots = workspace.root_chain()
        fresh = TrustedChain(RootPin(cid=roots[0].root_id), now=now)
        for signed_root in roots:
            fresh.update_root(signed_root)
        if head is not None:
            by_id = {r.root_id: r for r in roots}
            chain = list(iter_history(store, head.commit_id))
            chain.reverse()
            accepted: tuple[CID, int] | None = None
            for commit_id, _ in chain:
                signed = workspace.envelope_of(commit_id)
                if signed is None:
                    linked_only.append(commit_id)
                    continue
                # each commit is checked under the root it names, as followers of that
                # time did: a later rotation may have revoked the keys that signed it
                named = by_id.get(signed.commit.root)
                if named is None:
                    raise IndexOperationError(
                        f"commit {commit_id} names trust root {signed.commit.root}, which is "
                        "not in this index's root chain"
                    )
                history = TrustedChain(
                    RootPin(cid=named.root_id),
                    now=now,
                    allow_stale=True,
                    head=None if accepted is None else accepted[0],
                    height=None if accepted is None else accepted[1],
                )
                history.update_root(named)
                history.update_commit(signed, store)
                accepted = (commit_id, signed.height)
                checked += 1
            if accepted is not None and accepted[0] != head.commit_id:
                raise IndexOperationError(
                    f"the head {head.commit_id} was not reached from the root"
                )
            fresh.update_commit(head, store)
            for key, value in ProllyTree(store).items(head.commit.index):
                parse_index_key(key)
                IndexEntry.from_dag(value)
                entries += 1
    except IpfsbinError as exc:
        return VerifyReport(
            ok=False,
            checked=checked,
            linked_only=tuple(linked_only),
            entries=entries,
            problem=f"{exc.message} ({type(exc).__name__})",
            **base,
        )
    return VerifyReport(
        ok=True, checked=checked, linked_only=tuple(linked_only), entries=entries, **base
    )
