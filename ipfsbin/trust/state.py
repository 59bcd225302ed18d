"""The accepted chain of trust roots and commits: a state machine without I/O.

Like python-tuf's trusted metadata set: a :class:`TrustedChain` starts from a
pin (a root ID, or a maintainer key ID), then takes roots in order with
:meth:`TrustedChain.update_root` and commits with
:meth:`TrustedChain.update_commit`. Every update either moves the state
forward or raises and leaves it as it was. Time comes in from the caller, and
blocks for the ancestry walk come from a :class:`BlockStore` passed in.

Calls in the wrong order raise :class:`RuntimeError`; untrustworthy data
raises a :class:`TrustError` subclass (rules and order in ``schema/trust.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ipfsbin.codec.cid import CID
from ipfsbin.codec.fields import rfc3339
from ipfsbin.errors import (
    CodecError,
    ExpiredError,
    HistoryError,
    RevokedKeyError,
    RollbackError,
    RotationError,
    SchemaError,
)
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.commit import Commit, SignedCommit, load_commit_payload
from ipfsbin.trust.root import ROLE_NAMES, SignedRoot
from ipfsbin.trust.signing import (
    SignatureReport,
    check_signatures,
    public_key_of,
    verify_signatures,
)

__all__ = ["DEFAULT_MAX_WALK", "RootPin", "TrustedChain"]

DEFAULT_MAX_WALK = 10_000
"""Most commits the ancestry check loads before giving up (bounds work on hostile input)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RootPin:
    """What the user trusts out of band: a root (by ID or envelope CID) or a maintainer key."""

    cid: CID | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if (self.cid is None) == (self.key_id is None):
            raise ValueError("a RootPin takes exactly one of cid= or key_id=")
        if self.key_id is not None:
            public_key_of(self.key_id)

    def describe(self) -> str:
        return f"root {self.cid}" if self.cid is not None else f"maintainer key {self.key_id}"


class TrustedChain:
    """Roots and commits accepted so far, and the rules for accepting the next one.

    ``head``/``height`` seed the state from an earlier session (both or
    neither); ``now`` is Unix seconds. ``allow_stale=True`` accepts expired
    roots and commits, for offline use only.
    """

    def __init__(
        self,
        pin: RootPin,
        *,
        now: int,
        allow_stale: bool = False,
        head: CID | None = None,
        height: int | None = None,
        max_walk: int = DEFAULT_MAX_WALK,
    ) -> None:
        if (head is None) != (height is None):
            raise ValueError("give both head= and height= of the last accepted commit, or neither")
        if height is not None and height < 1:
            raise ValueError(f"height must be >= 1, got {height}")
        if max_walk < 1:
            raise ValueError(f"max_walk must be >= 1, got {max_walk}")
        self._pin = pin
        self._now = now
        self._allow_stale = allow_stale
        self._max_walk = max_walk
        self._roots: list[SignedRoot] = []
        # role name -> key IDs that an earlier accepted root listed and a later one dropped
        self._revoked: dict[str, set[str]] = {name: set() for name in ROLE_NAMES}
        self._head = head
        self._height = height
        self._head_commit: SignedCommit | None = None
        self._commits_accepted = False

    # -- what has been accepted -------------------------------------------------------------

    @property
    def root(self) -> SignedRoot:
        """The newest accepted root; :class:`RuntimeError` before the first ``update_root``."""
        if not self._roots:
            raise RuntimeError("no trust root accepted yet: call update_root() first")
        return self._roots[-1]

    @property
    def roots(self) -> tuple[SignedRoot, ...]:
        return tuple(self._roots)

    @property
    def head(self) -> CID | None:
        """Commit ID of the accepted head (``None`` before any)."""
        return self._head

    @property
    def height(self) -> int | None:
        return self._height

    @property
    def head_commit(self) -> SignedCommit | None:
        """The head accepted in this session, with its signatures."""
        return self._head_commit

    def revoked(self, role: str = "maintainers") -> frozenset[str]:
        """Key IDs an accepted root dropped from ``role`` and no later root restored."""
        return frozenset(self._revoked[role])

    # -- roots ------------------------------------------------------------------------------

    def update_root(self, signed: SignedRoot) -> None:
        """Accept the pinned root first, then each next version in order.

        Loading the current root again is a no-op, so a follower can feed
        every root it sees.
        """
        if self._commits_accepted:
            raise RuntimeError(
                "roots must all be loaded before the first update_commit(); "
                "start a new TrustedChain from the saved head"
            )
        if not self._roots:
            self._accept_pinned(signed)
            return
        current = self._roots[-1]
        if signed.root_id == current.root_id:
            return
        old, new = current.root, signed.root
        if new.version <= old.version:
            raise RollbackError(
                f"trust root version {new.version} is not above the accepted {old.version}"
            )
        if new.version != old.version + 1:
            raise RotationError(
                f"trust root version {new.version} skips ahead of the accepted {old.version}; "
                f"expected version {old.version + 1}",
                hint="load every root version in order",
            )
        if new.previous != current.root_id:
            raise RotationError(
                f"trust root version {new.version} links previous {new.previous}, "
                f"expected the accepted version {old.version} {current.root_id}"
            )
        by_old = check_signatures(signed, old.maintainers)
        if by_old.invalid:
            verify_signatures(signed, old.maintainers)  # raises SignatureError with details
        if not by_old.met:
            raise RotationError(
                f"trust root version {new.version} is signed by {len(by_old.valid)} of "
                f"{old.maintainers.threshold} required maintainers keys of version "
                f"{old.version} (valid: {', '.join(by_old.valid) or 'none'})",
                hint="a rotation must be signed by the old maintainers as well as the new",
            )
        verify_signatures(signed, new.maintainers)
        for name in ROLE_NAMES:
            kept = set(new.role(name).keys)
            self._revoked[name] |= set(old.role(name).keys) - kept
            self._revoked[name] -= kept
        self._roots.append(signed)

    def _accept_pinned(self, signed: SignedRoot) -> None:
        pin = self._pin
        if pin.cid is not None and pin.cid not in (signed.root_id, signed.cid):
            raise RotationError(
                f"trust root {signed.root_id} (version {signed.version}) is not the pinned "
                f"{pin.cid}",
                hint="load the pinned root first, then newer versions in order",
            )
        if pin.key_id is not None:
            report = check_signatures(signed, signed.root.maintainers)
            if pin.key_id not in report.valid:
                raise RotationError(
                    f"trust root {signed.root_id} (version {signed.version}) is not signed "
                    f"by the pinned maintainer key {pin.key_id} "
                    f"(valid maintainer signatures: {', '.join(report.valid) or 'none'})"
                )
        verify_signatures(signed, signed.root.maintainers)
        self._roots.append(signed)

    # -- commits ----------------------------------------------------------------------------

    def update_commit(self, signed: SignedCommit, store: BlockStore) -> SignatureReport:
        """Accept ``signed`` as the new head, or raise and keep the old one.

        Checks, in this order: it names an accepted root; signatures under the
        newest root (forged -> SignatureError, by a revoked key ->
        RevokedKeyError, too few -> ThresholdError); root and commit not
        expired (ExpiredError); height above the accepted (RollbackError);
        the accepted head is an ancestor (HistoryError). Re-feeding the
        accepted head is a no-op.
        """
        root = self.root  # raises RuntimeError when no root was loaded
        commit = signed.commit
        self._check_names_root(signed)
        report = check_signatures(signed, root.root.maintainers)
        if report.invalid:
            verify_signatures(signed, root.root.maintainers)  # raises SignatureError
        revoked = sorted(set(signed.signers) & self._revoked["maintainers"])
        if revoked:
            raise RevokedKeyError(
                f"commit {signed.commit_id} is signed by {', '.join(revoked)}, which trust "
                f"root version {root.version} no longer lists as maintainers",
                hint="the maintainers must sign a new commit under the current root",
            )
        verify_signatures(signed, root.root.maintainers)
        if not self._allow_stale:
            self._check_not_expired(root, commit, signed.commit_id)
        if signed.commit_id == self._head:
            self._head_commit = signed
            self._commits_accepted = True
            return report
        if self._height is not None and commit.height <= self._height:
            raise RollbackError(
                f"commit {signed.commit_id}: height {commit.height} is not above "
                f"the accepted {self._height}",
                hint="a mirror or IPNS record may be serving an old head; wait for a newer one",
            )
        if self._head is not None and self._height is not None:
            self._check_descends(signed.commit_id, commit, self._head, self._height, store)
        self._head = signed.commit_id
        self._height = commit.height
        self._head_commit = signed
        self._commits_accepted = True
        return report

    def _check_names_root(self, signed: SignedCommit) -> None:
        named = signed.commit.root
        if any(r.root_id == named for r in self._roots):
            return
        current = self.root
        raise RotationError(
            f"commit {signed.commit_id} was signed under trust root {named}, which is not "
            f"in the accepted chain (newest: version {current.version} {current.root_id})",
            hint="fetch the newer trust root and load it before this commit",
        )

    def _check_not_expired(self, root: SignedRoot, commit: Commit, commit_id: CID) -> None:
        now = self._now
        hint = (
            "the maintainers have not re-signed in time (or this is a freeze attack); "
            "use --allow-stale only to work offline on purpose"
        )
        if root.root.expires <= now:
            raise ExpiredError(
                f"trust root version {root.version} expired at {rfc3339(root.root.expires)}; "
                f"now is {rfc3339(now)}",
                hint=hint,
            )
        if commit.expires <= now:
            raise ExpiredError(
                f"commit {commit_id} expired at {rfc3339(commit.expires)}; now is {rfc3339(now)}",
                hint=hint,
            )

    def _check_descends(
        self, new_id: CID, new: Commit, head: CID, head_height: int, store: BlockStore
    ) -> None:
        """Raise HistoryError unless ``head`` is reachable from ``new`` through parents.

        Heights fall by exactly one along the highest parent, so commits at or
        below the accepted height cannot lead to the head and are not expanded.
        """
        frontier: list[tuple[CID, Commit]] = [(new_id, new)]
        seen: set[CID] = {new_id}
        loaded = 0
        found = False
        while frontier:
            child_id, child = frontier.pop()
            parent_heights: list[int] = []
            for parent_id in child.parents:
                if parent_id == head:
                    found = True
                    parent_heights.append(head_height)
                    continue
                if loaded >= self._max_walk:
                    raise HistoryError(
                        f"gave up looking for the accepted head {head} after {loaded} commits "
                        f"below {new_id}",
                        hint="the new head is too far ahead of the accepted one to check",
                    )
                parent = self._load_parent(store, parent_id, child_id)
                loaded += 1
                parent_heights.append(parent.height)
                if parent_id not in seen and parent.height > head_height:
                    seen.add(parent_id)
                    frontier.append((parent_id, parent))
            if child.parents and max(parent_heights) != child.height - 1:
                raise HistoryError(
                    f"commit {child_id} has height {child.height} but its highest parent has "
                    f"height {max(parent_heights)}; expected {child.height - 1}"
                )
            if any(h >= child.height for h in parent_heights):
                raise HistoryError(
                    f"commit {child_id} at height {child.height} has a parent at or above it"
                )
            if found:
                return
        raise HistoryError(
            f"the accepted head {head} (height {head_height}) is not an ancestor of commit "
            f"{new_id} (height {new.height}): history was rewritten",
            hint="refusing a rewritten history; ask the maintainers what happened",
        )

    def _load_parent(self, store: BlockStore, parent_id: CID, child_id: CID) -> Commit:
        try:
            return load_commit_payload(store, parent_id)
        except (SchemaError, CodecError) as exc:
            raise HistoryError(
                f"parent {parent_id} of commit {child_id} is not a valid commit: {exc.message}"
            ) from exc
