"""Rotating the trust root: make version n+1, collect co-signatures, adopt it.

Version n+1 links version n in ``previous`` and counts only when a threshold
of version n's maintainers *and* of its own signed it (``schema/trust.md``,
*Rotation*). Until both are met it waits as the workspace's root draft;
once met it is verified from the current root exactly as a follower would
(:class:`~ipfsbin.trust.state.TrustedChain`) and becomes the current root,
under which the next commit is signed. Older versions stay kept and pinned:
commit envelopes list the whole chain so that followers can walk it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError, TrustError
from ipfsbin.kubo.pins import Pins, pin_name
from ipfsbin.maintainer._keys import maintainer_key
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import Root, SignedRoot, load_root, make_root, put_root
from ipfsbin.trust.signing import (
    Signature,
    SignatureReport,
    check_signatures,
    verify_not_forged,
)
from ipfsbin.trust.state import RootPin, TrustedChain

__all__ = [
    "DEFAULT_ROOT_DAYS",
    "RootChange",
    "RootResult",
    "next_root",
    "rotate_root",
    "sign_root",
]

DAY = 86400
DEFAULT_ROOT_DAYS = 365


@dataclass(frozen=True, kw_only=True)
class RootChange:
    """What version n+1 changes from version n; roles not mentioned are kept as they are.

    Publishers and builders do not follow the maintainers: the publishers
    role names the IPNS names followers subscribed to, so it changes only
    when asked. ``threshold`` is the maintainers' (kept when ``None``).
    """

    add_maintainers: tuple[str, ...] = ()
    remove_maintainers: tuple[str, ...] = ()
    threshold: int | None = None
    add_publishers: tuple[str, ...] = ()
    remove_publishers: tuple[str, ...] = ()
    add_builders: tuple[str, ...] = ()
    remove_builders: tuple[str, ...] = ()
    expires_days: int = DEFAULT_ROOT_DAYS

    def __post_init__(self) -> None:
        for name in (
            "add_maintainers",
            "remove_maintainers",
            "add_publishers",
            "remove_publishers",
            "add_builders",
            "remove_builders",
        ):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise TypeError(f"RootChange.{name} must be a tuple, not {type(value).__name__}")
            for key_id in value:
                maintainer_key(key_id)
        if self.threshold is not None and self.threshold < 1:
            raise IndexOperationError(
                f"the maintainers' threshold must be at least 1, got {self.threshold}"
            )
        if self.expires_days < 1:
            raise IndexOperationError(f"--expires must be at least 1 day, got {self.expires_days}")


@dataclass(frozen=True, kw_only=True)
class RootResult:
    """A new root version and how far its two thresholds are met."""

    signed: SignedRoot
    by_old: SignatureReport
    """Signatures checked against the previous version's maintainers."""
    by_new: SignatureReport
    """Signatures checked against its own maintainers."""
    adopted: bool
    """It is now the workspace's current root."""
    previous_envelope: CID | None = None
    """The envelope it replaced (the draft's or the one fetched), when signatures were merged."""

    @property
    def met(self) -> bool:
        return self.by_old.met and self.by_new.met

    def to_json(self) -> dict[str, Any]:
        root = self.signed.root
        return {
            "envelope": str(self.signed.cid),
            "root_id": str(self.signed.root_id),
            "version": root.version,
            "previous": None if root.previous is None else str(root.previous),
            "expires": root.expires,
            "maintainers": _role_json(root, "maintainers"),
            "publishers": _role_json(root, "publishers"),
            "builders": _role_json(root, "builders"),
            "signed_by": list(self.signed.signers),
            "old_maintainers": _report_json(self.by_old),
            "new_maintainers": _report_json(self.by_new),
            "threshold_met": self.met,
            "adopted": self.adopted,
            "previous_envelope": (
                None if self.previous_envelope is None else str(self.previous_envelope)
            ),
        }


def _role_json(root: Root, name: str) -> dict[str, Any]:
    role = root.role(name)
    return {"keys": list(role.keys), "threshold": role.threshold}


def _report_json(report: SignatureReport) -> dict[str, Any]:
    return {
        "signed_by": list(report.valid),
        "threshold": report.threshold,
        "missing": list(report.missing),
        "met": report.met,
    }


def _edit(name: str, keys: Sequence[str], add: Sequence[str], remove: Sequence[str]) -> list[str]:
    result = list(keys)
    for key_id in remove:
        if key_id not in result:
            raise IndexOperationError(
                f"cannot remove {key_id} from the {name}: the current root does not list it",
                hint="`ipfsbin index status` shows the current roles",
            )
        result.remove(key_id)
    for key_id in add:
        if key_id in result:
            raise IndexOperationError(f"cannot add {key_id} to the {name}: it is already listed")
        result.append(key_id)
    if not result:
        raise IndexOperationError(
            f"the new root would have no {name}",
            hint=f"add another key to the {name} before removing the last one",
        )
    return result


def next_root(current: SignedRoot, change: RootChange, *, now: int) -> Root:
    """Version n+1 of ``current`` with ``change`` applied; ``IndexOperationError`` if impossible."""
    old = current.root
    maintainers = _edit(
        "maintainers", old.maintainers.keys, change.add_maintainers, change.remove_maintainers
    )
    threshold = old.maintainers.threshold if change.threshold is None else change.threshold
    if threshold > len(maintainers):
        raise IndexOperationError(
            f"a threshold of {threshold} cannot be met by the {len(maintainers)} maintainer(s) "
            "the new root would list",
            hint="lower --threshold, or add maintainers with --add-maintainer",
        )
    publishers = _edit(
        "publishers", old.publishers.keys, change.add_publishers, change.remove_publishers
    )
    builders = _edit("builders", old.builders.keys, change.add_builders, change.remove_builders)
    return make_root(
        expires=now + change.expires_days * DAY,
        maintainers=[maintainer_key(k) for k in maintainers],
        maintainers_threshold=threshold,
        publishers=[maintainer_key(k) for k in publishers],
        # a role keeps its threshold unless removals leave fewer keys than it asks for
        publishers_threshold=min(old.publishers.threshold, len(publishers)),
        builders=[maintainer_key(k) for k in builders],
        builders_threshold=min(old.builders.threshold, len(builders)),
        previous=current,
    )


def _require_signer(old: Root, new: Root, key: SigningKey) -> None:
    if key.key_id not in old.maintainers and key.key_id not in new.maintainers:
        raise TrustError(
            f"key {key.key_id} is a maintainer of neither trust root version {old.version} "
            f"nor version {new.version}",
            hint="a rotation is signed by maintainers of the current root and of the new one",
        )


def _merge(a: SignedRoot, b: SignedRoot) -> SignedRoot:
    signatures: list[Signature] = [*a.signatures, *b.signatures]
    return SignedRoot.create(a.payload, signatures)


def _adopt(workspace: Workspace, signed: SignedRoot, now: int) -> None:
    """Verify ``signed`` as the next version exactly as a follower of this index would."""
    current = workspace.signed_root
    chain = TrustedChain(RootPin(cid=current.root_id), now=now)
    chain.update_root(current)
    chain.update_root(signed)


def _publisher_name(
    workspace: Workspace, root: Root, local: Sequence[tuple[str, str]]
) -> str | None:
    """The local key that signs IPNS records under ``root``: the same as before if it can."""
    names = dict(workspace.key_names)
    names.update(local)
    current = workspace.publisher_key_name
    if current is not None and names.get(current) in root.publishers:
        return current
    return next((name for name, key_id in sorted(names.items()) if key_id in root.publishers), None)


def _finish(
    workspace: Workspace,
    store: BlockStore,
    pins: Pins,
    signed: SignedRoot,
    keys: Sequence[tuple[str, SigningKey]],
    replaced: CID | None,
    *,
    now: int,
) -> RootResult:
    old = workspace.signed_root.root
    by_old = check_signatures(signed, old.maintainers)
    by_new = check_signatures(signed, signed.root.maintainers)
    put_root(store, signed)
    adopted = by_old.met and by_new.met
    if adopted:
        _adopt(workspace, signed, now)
        pins.move(replaced, signed.cid, pin_name("index", workspace.name, "root"))
        local = [(name, key.key_id) for name, key in keys if key.key_id in signed.root.maintainers]
        workspace.record_root(
            signed,
            as_current=True,
            key_names=local,
            publisher_key_name=_publisher_name(workspace, signed.root, local),
        )
    else:
        pins.move(replaced, signed.cid, pin_name("index", workspace.name, "root-draft"))
        workspace.record_root(signed, as_current=False)
    return RootResult(
        signed=signed, by_old=by_old, by_new=by_new, adopted=adopted, previous_envelope=replaced
    )


def rotate_root(
    workspace: Workspace,
    store: BlockStore,
    pins: Pins,
    keys: Sequence[tuple[str, SigningKey]],
    change: RootChange,
    *,
    now: int,
) -> RootResult:
    """Make root version n+1 with ``change``, signed by the local ``keys``.

    It becomes the current root at once when the keys meet both thresholds
    (version n's maintainers and its own); otherwise it is kept as the root
    draft for :func:`sign_root`. ``keys`` are (local name, key) pairs.
    """
    if not keys:
        raise IndexOperationError("no local maintainer key given", hint="pass --key NAME")
    pending = workspace.draft_root
    if pending is not None:
        raise IndexOperationError(
            f"trust root version {pending.version} ({pending.cid}) is still waiting for "
            "co-signatures",
            hint=f"co-sign it with `ipfsbin index sign-root {pending.cid} --key NAME`, "
            "or drop it with `ipfsbin index drop-draft-root`",
        )
    draft = workspace.draft
    if draft is not None:
        raise IndexOperationError(
            f"commit {draft.cid} is waiting for co-signatures under the current root",
            hint="finish it with `ipfsbin index sign` or drop it with `ipfsbin index drop-draft` "
            "before rotating the root",
        )
    current = workspace.signed_root
    new = next_root(current, change, now=now)
    for _, key in keys:
        _require_signer(current.root, new, key)
    if not any(key.key_id in current.root.maintainers for _, key in keys):
        raise TrustError(
            f"none of the given keys is a maintainer of the current trust root version "
            f"{current.version}",
            hint="a rotation is started by a current maintainer (`ipfsbin index status`)",
        )
    signed = SignedRoot.create(new)
    for _, key in keys:
        signed = signed.with_signature(key)
    return _finish(workspace, store, pins, signed, keys, None, now=now)


def sign_root(
    workspace: Workspace | None,
    store: BlockStore,
    pins: Pins,
    envelope: CID,
    keys: Sequence[tuple[str, SigningKey]],
    *,
    now: int,
) -> RootResult:
    """Co-sign the root version behind ``envelope`` with ``keys`` and/or merge its signatures.

    With a workspace: the root must be the next version after its current
    root; signatures on its root draft are kept too, and when both thresholds
    are met the root is verified and adopted. Without one (a co-signer on
    another host) the co-signed envelope is stored and pinned for the
    maintainer to pick up with ``ipfsbin index sign-root CID``.
    """
    signed = load_root(store, envelope)
    verify_not_forged(signed, f"trust root {signed.root_id}")
    if signed.root.previous is None:
        raise IndexOperationError(
            f"trust root {signed.root_id} is version 1: there is no rotation to co-sign",
            hint="a first root is signed when the index is made (`ipfsbin index init`)",
        )
    if workspace is None:
        old = Root.from_dag(get_value(store, signed.root.previous))
        for _, key in keys:
            _require_signer(old, signed.root, key)
            signed = signed.with_signature(key)
        put_root(store, signed)
        pins.pin(signed.cid, pin_name("cosign", "root"))
        return RootResult(
            signed=signed,
            by_old=check_signatures(signed, old.maintainers),
            by_new=check_signatures(signed, signed.root.maintainers),
            adopted=False,
            previous_envelope=envelope,
        )
    current = workspace.signed_root
    if signed.root_id == current.root_id:
        raise IndexOperationError(
            f"trust root version {signed.version} ({signed.root_id}) is already this index's "
            "current root"
        )
    if signed.version != current.version + 1 or signed.root.previous != current.root_id:
        raise IndexOperationError(
            f"trust root {signed.root_id} (version {signed.version}) is not the next version "
            f"after this index's current root (version {current.version} {current.root_id})",
            hint="is it a root of another index? check --index",
        )
    pending = workspace.draft_root
    replaced = envelope
    if pending is not None and pending.root_id == signed.root_id:
        signed = _merge(pending, signed)
        replaced = pending.cid
    elif pending is not None:
        raise IndexOperationError(
            f"another trust root version {pending.version} ({pending.cid}) is waiting for "
            "co-signatures",
            hint="drop it with `ipfsbin index drop-draft-root` to take this one instead",
        )
    for _, key in keys:
        _require_signer(current.root, signed.root, key)
        signed = signed.with_signature(key)
    return _finish(workspace, store, pins, signed, keys, replaced, now=now)
