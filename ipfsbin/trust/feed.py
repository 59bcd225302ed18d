"""Builder feeds: a builder's attestations as an append-only, single-key index.

A feed is an index (same prolly tree, commits, envelopes, changesets and
trust root types) whose root lists one key in every role; the format and the
rules followers apply are in ``schema/feed.md``. This module holds what both
sides need without I/O of their own (blocks come from a store passed in): the
key format, the feed's trust root, one entry checked, and
:func:`verify_feed`, which a follower runs on a new head and the builder runs
on its own commit before it moves the head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import CodecError, FeedError, SchemaError
from ipfsbin.index.diff import diff
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import IndexKey, index_key, parse_index_key, short_id
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.attestation import Attestation, check_attestation
from ipfsbin.trust.commit import Commit, SignedCommit, load_commit, load_commit_payload
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, load_root, make_root, sign_root
from ipfsbin.trust.signing import load_signed_blocks, public_key_of
from ipfsbin.trust.state import DEFAULT_MAX_WALK, RootPin, TrustedChain

__all__ = [
    "FEED_CREATE_MESSAGE",
    "FEED_ROOT_SECONDS",
    "FeedEntry",
    "FeedMark",
    "FeedUpdate",
    "check_feed_root",
    "feed_entry",
    "feed_key",
    "make_feed_root",
    "parse_feed_key",
    "verify_feed",
]

FEED_ROOT_SECONDS: Final = 10 * 365 * 86400
"""A feed's root (and so each of its commits) expires this long after it was made."""
FEED_CREATE_MESSAGE: Final = "Create feed"


def feed_key(build_key: str, statement: CID) -> str:
    """``<index key>/<statement digest>`` (``schema/feed.md`` §1)."""
    parse_index_key(build_key)
    return f"{build_key}/{short_id(statement)}"


def parse_feed_key(key: str) -> tuple[IndexKey, str]:
    """The index key part and the statement digest; ``FeedError`` for anything else."""
    build_key, sep, digest = key.rpartition("/")
    try:
        parsed = parse_index_key(build_key)
    except SchemaError as exc:
        raise FeedError(f"feed key {key!r}: {exc.message}") from exc
    if not sep or len(digest) != len(parsed.descriptor_digest):
        raise FeedError(f"feed key {key!r} does not end in a statement digest")
    return parsed, digest


@dataclass(frozen=True, kw_only=True)
class FeedEntry:
    """One attestation in a feed, with the keys it is found under."""

    key: str
    build_key: str
    cpv: str
    attestation: Attestation

    @property
    def value(self) -> IndexEntry:
        return IndexEntry.new(self.attestation.statement.manifest, (self.attestation.cid,))

    def to_json(self) -> dict[str, Any]:
        statement = self.attestation.statement
        return {
            "key": self.key,
            "build_key": self.build_key,
            "cpv": self.cpv,
            "attestation": str(self.attestation.cid),
            "manifest": str(statement.manifest),
            "sha256": statement.sha256.hex(),
            "size": statement.size,
        }


def feed_entry(store: BlockStore, attestation: CID, builder: str) -> FeedEntry:
    """The feed entry for the attestation envelope ``attestation``, checked.

    It must be an attestation validly signed by ``builder`` (a key ID) and its
    descriptor must decode; ``FeedError`` says what is wrong.
    """
    where = f"attestation {attestation}"
    try:
        envelope, payload = load_signed_blocks(store, attestation)
        signed = Attestation.from_blocks(envelope, payload, cid=attestation)
        statement = signed.statement
        descriptor = Descriptor.from_block(statement.descriptor, store.get(statement.descriptor))
        build_key = index_key(descriptor.platform, descriptor.cpv, descriptor.cid)
    except (SchemaError, CodecError) as exc:
        raise FeedError(f"{where}: {exc.message}", hint=exc.hint) from exc
    except ValueError as exc:
        raise FeedError(f"{where}: {exc}") from exc
    report = check_attestation(signed, allowed_keys=[builder]).report
    if report.invalid or builder not in report.valid:
        raise FeedError(
            f"{where} is not validly signed by the feed's builder {builder} "
            f"(signed by {', '.join(signed.signers) or 'nobody'})",
            hint="a feed carries only its own builder's attestations",
        )
    return FeedEntry(
        key=feed_key(build_key, signed.payload_id),
        build_key=build_key,
        cpv=descriptor.cpv,
        attestation=signed,
    )


# -- the feed's trust root ----------------------------------------------------------------


def make_feed_root(key: SigningKey, *, now: int) -> SignedRoot:
    """Version 1 listing ``key`` alone as maintainer, publisher and builder, signed by it."""
    public = public_key_of(key.key_id)
    root = make_root(
        expires=now + FEED_ROOT_SECONDS,
        maintainers=[public],
        publishers=[public],
        builders=[public],
    )
    return sign_root(root, key)


def check_feed_root(root: SignedRoot, name: str) -> None:
    """``FeedError`` unless ``root`` is a feed root of the key ``name`` (§3.2)."""
    payload = root.root
    roles = (payload.maintainers, payload.publishers, payload.builders)
    if payload.version != 1 or any(r.keys != (name,) or r.threshold != 1 for r in roles):
        raise FeedError(
            f"trust root {root.root_id} is not the feed root of {name}: a feed root is "
            "version 1 and lists the builder's key alone in every role",
            hint="is this an index rather than a builder feed?",
        )


# -- following ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FeedMark:
    """The last head of a feed a follower accepted."""

    envelope: CID
    commit_id: CID
    height: int
    index: CID

    @classmethod
    def of(cls, signed: SignedCommit) -> FeedMark:
        return cls(
            envelope=signed.cid,
            commit_id=signed.commit_id,
            height=signed.height,
            index=signed.commit.index,
        )


@dataclass(frozen=True, kw_only=True)
class FeedUpdate:
    """A feed head accepted, and the entries it added since the follower's mark."""

    name: str
    head: SignedCommit
    root: SignedRoot
    previous: FeedMark | None
    added: tuple[FeedEntry, ...]

    @property
    def mark(self) -> FeedMark:
        return FeedMark.of(self.head)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "head": str(self.head.cid),
            "commit": str(self.head.commit_id),
            "height": self.head.height,
            "index": str(self.head.commit.index),
            "previous_height": None if self.previous is None else self.previous.height,
            "added": [entry.to_json() for entry in self.added],
        }


def _load_head(store: BlockStore, name: str, envelope: CID) -> tuple[SignedCommit, SignedRoot]:
    try:
        signed = load_commit(store, envelope)
    except (SchemaError, CodecError) as exc:
        raise FeedError(f"feed {name}: head {envelope} is not a commit: {exc.message}") from exc
    if len(signed.roots) != 1:
        raise FeedError(
            f"feed {name}: head {envelope} lists {len(signed.roots)} trust roots, a feed has one"
        )
    root = load_root(store, signed.roots[0])
    check_feed_root(root, name)
    return signed, root


def _history(
    store: BlockStore, name: str, head: SignedCommit, since: FeedMark | None
) -> list[tuple[CID, Commit, Commit]]:
    """(commit ID, commit, parent) from ``head`` back to ``since`` (or the first commit)."""
    steps: list[tuple[CID, Commit, Commit]] = []
    current_id, current = head.commit_id, head.commit
    while since is None or current_id != since.commit_id:
        if len(current.parents) > 1:
            raise FeedError(
                f"feed {name}: commit {current_id} has {len(current.parents)} parents; "
                "a feed is a line of commits"
            )
        if not current.parents:
            if ProllyTree(store).count(current.index) != 0:
                raise FeedError(f"feed {name}: its first commit {current_id} is not empty")
            break
        if len(steps) >= DEFAULT_MAX_WALK:
            raise FeedError(f"feed {name}: more than {DEFAULT_MAX_WALK} commits to check")
        parent_id = current.parents[0]
        parent = load_commit_payload(store, parent_id)
        steps.append((current_id, current, parent))
        current_id, current = parent_id, parent
    return steps


def _check_appends(store: BlockStore, name: str, steps: list[tuple[CID, Commit, Commit]]) -> None:
    tree = ProllyTree(store)
    for commit_id, commit, parent in reversed(steps):
        for change in diff(tree, parent.index, commit.index):
            if change.old is None:
                continue
            what = "dropped" if change.new is None else "changed"
            raise FeedError(
                f"feed {name} {what} entry {change.key} at commit {commit_id} "
                f"(height {commit.height}); a feed is append-only",
                hint="refusing the feed; ask its builder what happened",
            )


def _added(
    store: BlockStore, name: str, head: SignedCommit, since: FeedMark | None
) -> tuple[FeedEntry, ...]:
    tree = ProllyTree(store)
    base = tree.empty() if since is None else since.index
    added: list[FeedEntry] = []
    for change in diff(tree, base, head.commit.index):
        if change.old is not None or change.new is None:
            raise FeedError(f"feed {name} dropped or changed entry {change.key}")
        added.append(_checked_entry(store, name, change.key, change.new))
    return tuple(added)


def _checked_entry(store: BlockStore, name: str, key: str, value: dagcbor.Value) -> FeedEntry:
    parse_feed_key(key)
    try:
        entry = IndexEntry.from_dag(value)
    except SchemaError as exc:
        raise FeedError(f"feed {name} entry {key}: {exc.message}") from exc
    if len(entry.attestations) != 1 or entry.state != "ok":
        raise FeedError(f"feed {name} entry {key} must hold exactly one attestation and state ok")
    checked = feed_entry(store, entry.attestations[0], name)
    if checked.key != key or checked.value != entry:
        raise FeedError(
            f"feed {name} entry {key} does not match its attestation "
            f"(expected key {checked.key}, manifest {checked.attestation.statement.manifest})"
        )
    return checked


def verify_feed(
    store: BlockStore, name: str, envelope: CID, *, since: FeedMark | None, now: int
) -> FeedUpdate:
    """Accept ``envelope`` as the new head of feed ``name`` after ``since``, or raise.

    The checks of ``schema/feed.md`` §3: the feed's root and signatures
    through :class:`TrustedChain` pinned to the feed's key (rollback and
    rewritten history included), then append-only along every commit since
    the mark, then every added entry.
    """
    if envelope.codec != DAG_CBOR:
        raise FeedError(f"feed {name} points at {envelope}, which is not a dag-cbor block")
    head, root = _load_head(store, name, envelope)
    chain = TrustedChain(
        RootPin(key_id=name),
        now=now,
        head=None if since is None else since.commit_id,
        height=None if since is None else since.height,
    )
    chain.update_root(root)
    chain.update_commit(head, store)
    _check_appends(store, name, _history(store, name, head, since))
    added = _added(store, name, head, since)
    return FeedUpdate(name=name, head=head, root=root, previous=since, added=added)
