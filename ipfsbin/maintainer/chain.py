"""Making the chain: a new index, commits of staged changes, and co-signatures.

A commit becomes the head only when a threshold of maintainers signed it
and it verifies from the current head exactly as a follower would check it
(:class:`~ipfsbin.trust.state.TrustedChain`); until then it waits as the
workspace's draft for co-signatures (:func:`sign`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError, TrustError
from ipfsbin.index.changeset import put_changeset, split_changes
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.pins import Pins, pin_name
from ipfsbin.maintainer._keys import maintainer_key
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust.commit import (
    DEFAULT_COMMIT_LIFETIME,
    SignedCommit,
    load_commit,
    make_commit,
    put_commit,
    sign_commit,
)
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import Root, SignedRoot, make_root, put_root, sign_root
from ipfsbin.trust.signing import check_signatures, verify_not_forged
from ipfsbin.trust.state import RootPin, TrustedChain

__all__ = [
    "DEFAULT_ROOT_DAYS",
    "INIT_MESSAGE",
    "CommitResult",
    "InitResult",
    "SignResult",
    "commit",
    "init_index",
    "sign",
]

DAY = 86400
DEFAULT_ROOT_DAYS = 365
INIT_MESSAGE = "Initialize index"


# -- init ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InitResult:
    name: str
    root: SignedRoot
    head: SignedCommit
    local_keys: tuple[tuple[str, str], ...]
    publisher_key_name: str | None

    def to_json(self) -> dict[str, Any]:
        root = self.root.root
        return {
            "name": self.name,
            "root": str(self.root.cid),
            "root_id": str(self.root.root_id),
            "version": root.version,
            "expires": root.expires,
            "maintainers": {
                "keys": list(root.maintainers.keys),
                "threshold": root.maintainers.threshold,
            },
            "publishers": {
                "keys": list(root.publishers.keys),
                "threshold": root.publishers.threshold,
            },
            "builders": {"keys": list(root.builders.keys), "threshold": root.builders.threshold},
            "local_keys": {name: key_id for name, key_id in self.local_keys},
            "publisher_key_name": self.publisher_key_name,
            "head": str(self.head.cid),
            "commit": str(self.head.commit_id),
        }


def init_index(
    name: str,
    *,
    store: BlockStore,
    pins: Pins,
    keys: Sequence[tuple[str, SigningKey]],
    maintainers: Sequence[str] = (),
    threshold: int = 1,
    publishers: Sequence[str] | None = None,
    builders: Sequence[str] | None = None,
    expires_days: int = DEFAULT_ROOT_DAYS,
    now: int,
) -> tuple[Workspace, InitResult]:
    """A new index: trust root version 1 signed by the local ``keys``, and an empty first commit.

    ``maintainers``, ``publishers`` and ``builders`` are key IDs; the local
    keys are always maintainers, and publishers/builders default to the
    maintainers. The local keys must reach ``threshold``, since they sign
    the root and the first commit.
    """
    if not keys:
        raise IndexOperationError("no local maintainer key given", hint="pass --key NAME")
    if threshold < 1:
        raise IndexOperationError(f"the maintainers' threshold must be at least 1, got {threshold}")
    if threshold > len(keys):
        raise IndexOperationError(
            f"a threshold of {threshold} needs {threshold} local keys to sign the new root, "
            f"got {len(keys)}",
            hint="repeat --key for each local maintainer key, or lower --threshold",
        )
    if expires_days < 1:
        raise IndexOperationError(f"--expires must be at least 1 day, got {expires_days}")
    local_ids = [key.public_key for _, key in keys]
    maintainer_keys = [*local_ids, *(maintainer_key(k) for k in maintainers)]
    root_payload = make_root(
        expires=now + expires_days * DAY,
        maintainers=maintainer_keys,
        maintainers_threshold=threshold,
        publishers=None if publishers is None else [maintainer_key(k) for k in publishers],
        builders=None if builders is None else [maintainer_key(k) for k in builders],
    )
    signed_root = sign_root(root_payload, *(key for _, key in keys))
    put_root(store, signed_root)
    tree = ProllyTree(store)
    first = sign_commit(
        make_commit(
            index=tree.empty(),
            root=signed_root,
            time=now,
            expires=now + DEFAULT_COMMIT_LIFETIME,
            message=INIT_MESSAGE,
        ),
        *(key for _, key in keys),
        roots=(signed_root.cid,),
    )
    put_commit(store, first)
    chain = TrustedChain(RootPin(cid=signed_root.root_id), now=now)
    chain.update_root(signed_root)
    chain.update_commit(first, store)
    pins.pin(signed_root.cid, pin_name("index", name, "root"))
    pins.pin(first.cid, pin_name("index", name, "head"))
    local = tuple((key_name, key.key_id) for key_name, key in keys)
    publisher_name = next(
        (key_name for key_name, key_id in local if key_id in root_payload.publishers), None
    )
    workspace = Workspace.create(
        name, root=signed_root, key_names=local, publisher_key_name=publisher_name
    )
    workspace.record_commit(first, as_head=True)
    return workspace, InitResult(
        name=name,
        root=signed_root,
        head=first,
        local_keys=local,
        publisher_key_name=publisher_name,
    )


# -- commit and co-sign -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CommitResult:
    signed: SignedCommit
    head: bool
    valid: tuple[str, ...]
    threshold: int
    changes: int
    missing: tuple[str, ...] = field(default=())
    changeset: tuple[CID, ...] = field(default=())
    """The changeset parts the commit links (``ipfsbin.index.changeset``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "envelope": str(self.signed.cid),
            "commit": str(self.signed.commit_id),
            "height": self.signed.height,
            "index": str(self.signed.commit.index),
            "head": self.head,
            "signed_by": list(self.valid),
            "threshold": self.threshold,
            "missing": list(self.missing),
            "changes": self.changes,
            "changeset": [str(cid) for cid in self.changeset],
        }


def _root_envelopes(workspace: Workspace) -> tuple[CID, ...]:
    """Envelope CIDs of the trust-root chain, oldest first, for a commit envelope's ``roots``.

    The whole chain, so that a follower pinned to an older version (or to a
    key that only an older version lists) can walk every rotation in order.
    """
    return workspace.root_envelopes()


def _require_maintainer(root: Root, key: SigningKey) -> None:
    if key.key_id not in root.maintainers:
        raise TrustError(
            f"key {key.key_id} is not a maintainer under trust root version {root.version}",
            hint="sign with a key the root lists as a maintainer (`ipfsbin index status`)",
        )


def _accept(workspace: Workspace, store: BlockStore, signed: SignedCommit, now: int) -> None:
    """Verify ``signed`` as the next head exactly as a follower of this index would."""
    root = workspace.signed_root
    head = workspace.head_commit
    chain = TrustedChain(
        RootPin(cid=root.root_id),
        now=now,
        head=None if head is None else head.commit_id,
        height=None if head is None else head.height,
    )
    chain.update_root(root)
    chain.update_commit(signed, store)


def commit(
    workspace: Workspace,
    store: BlockStore,
    pins: Pins,
    key: SigningKey,
    message: str,
    *,
    now: int,
    lifetime: int = DEFAULT_COMMIT_LIFETIME,
) -> CommitResult:
    """Apply the staged changes in one batch and sign a commit on top of the head.

    The batch is also written as a changeset (``ipfsbin.index.changeset``, base =
    the head's index) that the commit links, so followers rebuild the new
    index from their copy of the old one instead of fetching its nodes. The
    commit becomes the head when ``key`` alone meets the maintainers'
    threshold; otherwise it is kept as the draft for :func:`sign`.
    """
    staged = workspace.staged()
    if not staged:
        raise IndexOperationError(
            "nothing staged to commit",
            hint="stage changes with `ipfsbin index add` or `ipfsbin index yank`",
        )
    draft = workspace.draft
    if draft is not None:
        raise IndexOperationError(
            f"commit {draft.cid} is still waiting for co-signatures",
            hint=f"co-sign it with `ipfsbin index sign {draft.cid} --key NAME`, "
            "or drop it with `ipfsbin index drop-draft`",
        )
    root = workspace.signed_root
    _require_maintainer(root.root, key)
    if lifetime < 1:
        raise ValueError(f"lifetime must be positive, got {lifetime}")
    head = workspace.head_commit
    tree = ProllyTree(store)
    base = tree.empty() if head is None else head.commit.index
    upserts = {change.key: change.entry.to_dag() for change in staged}
    new_index = tree.mutate(base, upserts)
    if new_index == base:
        raise IndexOperationError(
            "the staged changes leave the index as it is",
            hint="drop them with `ipfsbin index reset`",
        )
    # stored before the commit that links them; the head's recursive pin then covers them
    changeset = () if head is None else put_changeset(store, split_changes(base, upserts))
    signed = sign_commit(
        make_commit(
            index=new_index,
            root=root,
            time=now,
            parents=() if head is None else (head,),
            expires=now + lifetime,
            message=message,
            changes=changeset,
        ),
        key,
        roots=_root_envelopes(workspace),
    )
    put_commit(store, signed)
    report = check_signatures(signed, root.root.maintainers)
    if report.met:
        _accept(workspace, store, signed, now)
        pins.move(workspace.head, signed.cid, pin_name("index", workspace.name, "head"))
    else:
        pins.pin(signed.cid, pin_name("index", workspace.name, "draft"))
    workspace.record_commit(signed, as_head=report.met)
    return CommitResult(
        signed=signed,
        head=report.met,
        valid=report.valid,
        threshold=report.threshold,
        changes=len(staged),
        missing=report.missing,
        changeset=changeset,
    )


@dataclass(frozen=True, kw_only=True)
class SignResult:
    signed: SignedCommit
    previous: CID
    valid: tuple[str, ...]
    threshold: int
    missing: tuple[str, ...]
    head: bool
    """The commit is (now) this workspace's head."""

    @property
    def met(self) -> bool:
        return len(self.valid) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "envelope": str(self.signed.cid),
            "previous_envelope": str(self.previous),
            "commit": str(self.signed.commit_id),
            "height": self.signed.height,
            "signed_by": list(self.valid),
            "threshold": self.threshold,
            "missing": list(self.missing),
            "threshold_met": self.met,
            "head": self.head,
        }


def _merge_signatures(a: SignedCommit, b: SignedCommit) -> SignedCommit:
    if a.commit_id != b.commit_id:
        raise ValueError("only envelopes of the same commit can be merged")
    return SignedCommit.create(a.payload, [*a.signatures, *b.signatures], roots=a.roots or b.roots)


def sign(
    workspace: Workspace | None,
    store: BlockStore,
    pins: Pins,
    envelope: CID,
    key: SigningKey | None,
    *,
    now: int,
) -> SignResult:
    """Co-sign the commit behind ``envelope`` with ``key`` and/or merge its signatures.

    With a workspace: signatures already on its draft (or head) for the same
    commit are kept too, and when the maintainers' threshold is met the
    commit is verified from the current head and becomes the head. Without
    one (a co-signer on another host), the co-signed envelope is stored and
    pinned for the committer to pick up with ``ipfsbin index sign CID``.
    """
    signed = load_commit(store, envelope)
    if workspace is not None:
        root = workspace.signed_root.root
        if signed.commit.root != workspace.signed_root.root_id:
            raise TrustError(
                f"commit {signed.commit_id} was signed under trust root {signed.commit.root}, "
                f"not this index's {workspace.signed_root.root_id}",
                hint="is it a commit of another index? check --name",
            )
    else:
        root = Root.from_dag(get_value(store, signed.commit.root))
    role = root.maintainers
    # a signature outside the role counts for nothing, but merged into the head's envelope
    # unchecked it would be published (a revoked key's refuses the commit outright)
    verify_not_forged(signed, f"commit {signed.commit_id}")
    pending = workspace.draft if workspace is not None else None
    draft = pending if pending is not None and pending.commit_id == signed.commit_id else None
    accepted = workspace.envelope_of(signed.commit_id) if workspace is not None else None
    base = draft or accepted
    before = envelope if base is None else base.cid
    if base is not None:
        signed = _merge_signatures(base, signed)
    if workspace is not None:
        # the list is unsigned: take ours, whatever the incoming envelope said
        signed = signed.with_roots(_root_envelopes(workspace))
    if key is not None:
        _require_maintainer(root, key)
        signed = signed.with_signature(key)
    report = check_signatures(signed, role)
    put_commit(store, signed)
    became_head = False
    if workspace is None:
        pins.pin(signed.cid, pin_name("cosign", "commit"))
    elif accepted is not None:
        if workspace.head == accepted.cid:
            pins.move(accepted.cid, signed.cid, pin_name("index", workspace.name, "head"))
        workspace.update_head_signatures(signed)
        became_head = workspace.head == signed.cid
    elif draft is not None:
        if report.met:
            _accept(workspace, store, signed, now)
            pins.move(workspace.head, signed.cid, pin_name("index", workspace.name, "head"))
            pins.unpin(draft.cid)
            became_head = True
        else:
            pins.move(draft.cid, signed.cid, pin_name("index", workspace.name, "draft"))
        workspace.update_draft(signed, as_head=report.met)
    else:
        head = workspace.head_commit
        on_head = head is not None and signed.commit.parents[:1] == (head.commit_id,)
        if report.met and on_head and pending is None:
            # a commit made on another host on top of our head, now fully signed
            _accept(workspace, store, signed, now)
            pins.move(workspace.head, signed.cid, pin_name("index", workspace.name, "head"))
            workspace.update_draft(signed, as_head=True)
            became_head = True
        else:
            pins.pin(signed.cid, pin_name("cosign", "commit"))
    return SignResult(
        signed=signed,
        previous=before,
        valid=report.valid,
        threshold=report.threshold,
        missing=report.missing,
        head=became_head,
    )
