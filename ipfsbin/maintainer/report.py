"""What ``ipfsbin index status`` and ``show`` report, assembled once for every reader.

:func:`index_status` reads only the workspace (no daemon); :func:`commit_view`
reads a commit, its entries and its changes from a block store.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipfsbin.codec.cid import CID
from ipfsbin.index.entry import IndexEntry
from ipfsbin.maintainer.history import CommitRef, EntryChange, diff_commits, entries, resolve
from ipfsbin.maintainer.workspace import StagedChange, Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.commit import SignedCommit, load_commit_payload
from ipfsbin.trust.root import SignedRoot

__all__ = ["CommitView", "IndexStatus", "commit_view", "index_status"]


@dataclass(frozen=True, kw_only=True)
class IndexStatus:
    """The local index: trust root, head, drafts, staged changes and local keys."""

    name: str
    root_envelope: CID
    root: SignedRoot
    roots: tuple[CID, ...]
    head: SignedCommit | None
    draft: SignedCommit | None
    draft_root: SignedRoot | None
    staged: tuple[StagedChange, ...]
    local_keys: tuple[tuple[str, str], ...]
    publisher_key_name: str | None

    def to_json(self) -> dict[str, object]:
        root = self.root.root
        head, draft, draft_root = self.head, self.draft, self.draft_root
        return {
            "name": self.name,
            "root": str(self.root_envelope),
            "root_version": root.version,
            "root_expires": root.expires,
            "maintainers": {
                "keys": list(root.maintainers.keys),
                "threshold": root.maintainers.threshold,
            },
            "builders": list(root.builders.keys),
            "publishers": list(root.publishers.keys),
            "head": None if head is None else str(head.cid),
            "height": None if head is None else head.height,
            "head_expires": None if head is None else head.commit.expires,
            "draft": None if draft is None else str(draft.cid),
            "draft_signed_by": [] if draft is None else list(draft.signers),
            "roots": [str(cid) for cid in self.roots],
            "draft_root": None if draft_root is None else str(draft_root.cid),
            "draft_root_version": None if draft_root is None else draft_root.version,
            "draft_root_signed_by": [] if draft_root is None else list(draft_root.signers),
            "staged": [
                {"key": c.key, "action": c.action, "state": c.entry.state} for c in self.staged
            ],
            "local_keys": dict(self.local_keys),
            "publisher_key_name": self.publisher_key_name,
        }


def index_status(workspace: Workspace) -> IndexStatus:
    """The state of ``workspace``, read from its file alone."""
    return IndexStatus(
        name=workspace.name,
        root_envelope=workspace.root,
        root=workspace.signed_root,
        roots=workspace.root_envelopes(),
        head=workspace.head_commit,
        draft=workspace.draft,
        draft_root=workspace.draft_root,
        staged=tuple(workspace.staged()),
        local_keys=workspace.key_names,
        publisher_key_name=workspace.publisher_key_name,
    )


@dataclass(frozen=True, kw_only=True)
class CommitView:
    """A commit with what it changed against its first parent and its entries."""

    ref: CommitRef
    changes: tuple[EntryChange, ...]
    entries: tuple[tuple[str, IndexEntry], ...]

    def to_json(self) -> dict[str, object]:
        c = self.ref.commit
        return {
            "commit": str(self.ref.commit_id),
            "envelope": None if self.ref.envelope is None else str(self.ref.envelope),
            "signed_by": None if self.ref.signed is None else list(self.ref.signed.signers),
            "height": c.height,
            "time": c.time,
            "expires": c.expires,
            "message": c.message,
            "index": str(c.index),
            "changes": [ch.to_json() for ch in self.changes],
            "entries": [
                {
                    "key": key,
                    "state": entry.state,
                    "reason": entry.reason,
                    "manifest": str(entry.manifest),
                    "attestations": len(entry.attestations),
                }
                for key, entry in self.entries
            ],
        }


def commit_view(workspace: Workspace, store: BlockStore, ref: str, prefix: str = "") -> CommitView:
    """The commit ``ref`` names (HEAD, HEAD~N, DRAFT, a CID); entries under ``prefix``."""
    found = resolve(workspace, store, ref)
    commit = found.commit
    parent = load_commit_payload(store, commit.parents[0]) if commit.parents else None
    return CommitView(
        ref=found,
        changes=tuple(diff_commits(store, parent, commit)),
        entries=tuple(entries(store, commit, prefix)),
    )
