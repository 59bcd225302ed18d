"""Reading an index like git: commits by reference, log, diffs and entries.

References: ``HEAD``, ``HEAD~N`` (N first parents back), ``DRAFT``, or a
CID — a commit ID (the payload) or a commit's envelope CID.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ipfsbin.codec.cid import CID
from ipfsbin.codec.dagcbor import Value
from ipfsbin.errors import IndexOperationError
from ipfsbin.index.diff import diff
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.repro import ReproView, entry_view
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust.commit import Commit, SignedCommit, load_commit, load_commit_payload
from ipfsbin.trust.signing import ENVELOPE_TYPE, check_signatures

__all__ = [
    "CommitRef",
    "EntryChange",
    "EntryDetail",
    "LogEntry",
    "change_of",
    "diff_commits",
    "entries",
    "entry_detail",
    "log",
    "resolve",
]

_HEAD_BACK = re.compile(r"^HEAD~([0-9]+)$")


@dataclass(frozen=True, kw_only=True)
class CommitRef:
    """A commit found by reference; ``signed`` when its envelope is known here."""

    commit_id: CID
    commit: Commit
    signed: SignedCommit | None

    @property
    def envelope(self) -> CID | None:
        return None if self.signed is None else self.signed.cid


def resolve(workspace: Workspace, store: BlockStore, ref: str) -> CommitRef:
    """The commit ``ref`` names; ``IndexOperationError`` when it names none."""
    text = ref.strip()
    if text.upper() == "DRAFT":
        draft = workspace.draft
        if draft is None:
            raise IndexOperationError("there is no draft commit waiting for co-signatures")
        return CommitRef(commit_id=draft.commit_id, commit=draft.commit, signed=draft)
    back = 0
    match = _HEAD_BACK.match(text.upper())
    if text.upper() == "HEAD" or match:
        back = int(match.group(1)) if match else 0
        head = workspace.head_commit
        if head is None:
            raise IndexOperationError("the index has no commit yet")
        commit_id, commit = head.commit_id, head.commit
        for step in range(back):
            if not commit.parents:
                raise IndexOperationError(
                    f"{ref}: the history has only {step + 1} commit(s) before the head's root"
                )
            commit_id = commit.parents[0]
            commit = load_commit_payload(store, commit_id)
        return CommitRef(
            commit_id=commit_id, commit=commit, signed=workspace.envelope_of(commit_id)
        )
    try:
        cid = CID.from_text(text)
    except Exception as exc:
        raise IndexOperationError(
            f"{ref!r} is not a commit reference",
            hint="use HEAD, HEAD~N, DRAFT, a commit ID or an envelope CID",
        ) from exc
    value = get_value(store, cid)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == ENVELOPE_TYPE:
        signed = load_commit(store, cid)
        return CommitRef(commit_id=signed.commit_id, commit=signed.commit, signed=signed)
    commit = Commit.from_dag(value)
    return CommitRef(commit_id=cid, commit=commit, signed=workspace.envelope_of(cid))


# -- changes between two index trees ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EntryChange:
    """One key that differs: ``+`` added, ``-`` removed, ``~`` changed (``details`` say how)."""

    mark: Literal["+", "-", "~"]
    key: str
    old: IndexEntry | None
    new: IndexEntry | None
    details: tuple[str, ...]

    def line(self) -> str:
        text = f"{self.mark} {self.key}"
        return f"{text}  ({'; '.join(self.details)})" if self.details else text

    def to_json(self) -> dict[str, Any]:
        return {
            "change": {"+": "added", "-": "removed", "~": "changed"}[self.mark],
            "key": self.key,
            "details": list(self.details),
            "old": None if self.old is None else _entry_json(self.old),
            "new": None if self.new is None else _entry_json(self.new),
        }


def _entry_json(entry: IndexEntry) -> dict[str, Any]:
    return {
        "manifest": str(entry.manifest),
        "attestations": [str(a) for a in entry.attestations],
        "state": entry.state,
        "reason": entry.reason,
    }


def change_of(key: str, old: Value | None, new: Value | None) -> EntryChange:
    before = None if old is None else IndexEntry.from_dag(old)
    after = None if new is None else IndexEntry.from_dag(new)
    if before is None:
        assert after is not None  # noqa: S101 - diff never reports a key absent on both sides
        details = [f"{after.state}", f"{len(after.attestations)} attestation(s)"]
        if after.reason:
            details.append(f"reason: {after.reason}")
        return EntryChange(mark="+", key=key, old=None, new=after, details=tuple(details))
    if after is None:
        return EntryChange(mark="-", key=key, old=before, new=None, details=())
    details = []
    if before.state != after.state or before.reason != after.reason:
        reason = f" ({after.reason})" if after.reason else ""
        details.append(f"state {before.state} -> {after.state}{reason}")
    if before.manifest != after.manifest:
        details.append(f"manifest {before.manifest} -> {after.manifest}")
    gained = set(after.attestations) - set(before.attestations)
    lost = set(before.attestations) - set(after.attestations)
    if gained or lost:
        details.append(f"attestations +{len(gained)} -{len(lost)}")
    return EntryChange(mark="~", key=key, old=before, new=after, details=tuple(details))


def diff_commits(store: BlockStore, old: Commit | None, new: Commit) -> list[EntryChange]:
    """Entry changes from ``old`` (None: the empty index) to ``new``, in key order."""
    tree = ProllyTree(store)
    base = tree.empty() if old is None else old.index
    return [change_of(c.key, c.old, c.new) for c in diff(tree, base, new.index)]


# -- log ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    commit_id: CID
    commit: Commit
    envelope: CID | None
    signed_by: tuple[str, ...] | None
    """Maintainers whose signature verifies, when the envelope is known here."""
    added: int
    changed: int
    removed: int

    def to_json(self) -> dict[str, Any]:
        c = self.commit
        return {
            "commit": str(self.commit_id),
            "envelope": None if self.envelope is None else str(self.envelope),
            "height": c.height,
            "time": c.time,
            "expires": c.expires,
            "parents": [str(p) for p in c.parents],
            "index": str(c.index),
            "root": str(c.root),
            "message": c.message,
            "signed_by": None if self.signed_by is None else list(self.signed_by),
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
        }


def log(workspace: Workspace, store: BlockStore, *, limit: int | None = None) -> list[LogEntry]:
    """Commits from the head back along first parents, newest first."""
    head = workspace.head_commit
    if head is None:
        return []
    role = workspace.signed_root.root.maintainers
    out: list[LogEntry] = []
    commit_id: CID | None = head.commit_id
    commit: Commit | None = head.commit
    while commit_id is not None and commit is not None and (limit is None or len(out) < limit):
        parent = load_commit_payload(store, commit.parents[0]) if commit.parents else None
        changes = diff_commits(store, parent, commit)
        signed = workspace.envelope_of(commit_id)
        out.append(
            LogEntry(
                commit_id=commit_id,
                commit=commit,
                envelope=None if signed is None else signed.cid,
                signed_by=None if signed is None else check_signatures(signed, role).valid,
                added=sum(1 for c in changes if c.mark == "+"),
                changed=sum(1 for c in changes if c.mark == "~"),
                removed=sum(1 for c in changes if c.mark == "-"),
            )
        )
        commit_id = commit.parents[0] if commit.parents else None
        commit = parent
    return out


# -- entries ------------------------------------------------------------------------------


def entries(
    store: BlockStore, commit: Commit, prefix: str = ""
) -> Iterator[tuple[str, IndexEntry]]:
    for key, value in ProllyTree(store).scan(commit.index, prefix):
        yield key, IndexEntry.from_dag(value)


@dataclass(frozen=True, kw_only=True)
class EntryDetail:
    """An entry with its manifest's summary and the reproducibility view."""

    key: str
    entry: IndexEntry
    manifest: Manifest
    repro: ReproView
    staged: bool

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "key": self.key,
            "cpv": m.cpv,
            "state": self.entry.state,
            "reason": self.entry.reason,
            "staged": self.staged,
            "manifest": str(self.entry.manifest),
            "binpkg": str(m.binpkg),
            "format": m.format,
            "size": m.size,
            "sha256": m.sha256.hex(),
            "build": m.build.to_dag(),
            "attestations": [str(a) for a in self.entry.attestations],
            "reproducibility": self.repro.to_json(),
        }


def entry_detail(
    workspace: Workspace, store: BlockStore, key: str, *, at: Commit | None = None
) -> EntryDetail:
    """The entry ``key`` in ``at`` (default: as staged, else the head)."""
    parse_index_key(key)
    entry: IndexEntry | None = None
    staged = False
    if at is None:
        entry = workspace.staged_entry(key)
        staged = entry is not None
        head = workspace.head_commit
        at = None if head is None else head.commit
    if entry is None and at is not None:
        value = ProllyTree(store).get(at.index, key)
        entry = None if value is None else IndexEntry.from_dag(value)
    if entry is None:
        raise IndexOperationError(
            f"no entry {key} in the index", hint="`ipfsbin index show` lists keys"
        )
    manifest = Manifest.from_block(entry.manifest, store.get(entry.manifest))
    view = entry_view(
        store,
        entry,
        manifest_sha256=manifest.sha256,
        builders=workspace.signed_root.root.builders,
    )
    return EntryDetail(key=key, entry=entry, manifest=manifest, repro=view, staged=staged)
