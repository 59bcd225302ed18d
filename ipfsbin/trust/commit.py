"""Index commits: git-style, signed by a threshold of the maintainers.

A commit is the payload of a signed envelope (``ipfsbin.trust.signing``).
Its identity, the *commit ID*, is the CID of the payload block: parents link
commit IDs, so adding a co-signature (which makes a new envelope) never forks
history. IPNS points to the envelope. The wire format is in ``schema/trust.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import (
    MAX_INT,
    expect_fields,
    expect_type,
    get_cid,
    get_int,
    get_list,
    get_str,
)
from ipfsbin.errors import SchemaError
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot
from ipfsbin.trust.rootlist import MAX_ROOT_ENVELOPES, check_root_links
from ipfsbin.trust.signing import Payload, Signed, load_signed_blocks, put_signed

__all__ = [
    "COMMIT_DOMAIN",
    "COMMIT_TYPE",
    "DEFAULT_COMMIT_LIFETIME",
    "MAX_CHANGE_PARTS",
    "MAX_MESSAGE_BYTES",
    "MAX_ROOT_ENVELOPES",
    "Commit",
    "SignedCommit",
    "iter_history",
    "load_commit",
    "load_commit_payload",
    "make_commit",
    "put_commit",
    "sign_commit",
]

COMMIT_TYPE = "ipfsbin/commit/1"
COMMIT_DOMAIN = b"ipfsbin-commit-v1:"
DEFAULT_COMMIT_LIFETIME = 7 * 24 * 3600
"""Seconds a commit stays valid by default: maintainers re-sign at least weekly."""
MAX_MESSAGE_BYTES = 64 * 1024
MAX_CHANGE_PARTS = 4096
"""Changeset parts one commit may link (``ipfsbin.index.changeset.MAX_PARTS``)."""

_FIELDS = frozenset({"type", "parents", "index", "height", "time", "expires", "root", "message"})
_OPTIONAL = frozenset({"changes"})


@dataclass(frozen=True, kw_only=True)
class Commit(Payload):
    """The signed part of a commit. Times are Unix seconds (UTC); the first commit has height 1.

    ``changes`` links the changeset parts (``ipfsbin.index.changeset``) that turn the
    first parent's index into ``index``; empty when not given, and only a
    commit with exactly one parent may give it.
    """

    TYPE: ClassVar[str] = COMMIT_TYPE
    DOMAIN: ClassVar[bytes] = COMMIT_DOMAIN
    KIND: ClassVar[str] = "commit"

    parents: tuple[CID, ...]
    index: CID
    height: int
    time: int
    expires: int
    root: CID
    message: str
    changes: tuple[CID, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.parents, tuple):
            raise TypeError(f"Commit.parents must be a tuple, not {type(self.parents).__name__}")
        if len(set(self.parents)) != len(self.parents):
            raise SchemaError("commit lists the same parent twice")
        for name in ("height", "time", "expires"):
            number = getattr(self, name)
            if type(number) is not int or not 0 <= number <= MAX_INT:
                raise SchemaError(f"commit {name} must be an integer >= 0, got {number!r}")
        if not self.parents and self.height != 1:
            raise SchemaError(f"a commit without parents has height 1, got {self.height}")
        if self.parents and self.height < 2:
            raise SchemaError(f"a commit with parents has height >= 2, got {self.height}")
        if self.expires <= self.time:
            raise SchemaError(
                f"commit expires ({self.expires}) must be after its time ({self.time})"
            )
        if type(self.message) is not str:
            raise SchemaError(f"commit message must be a string, got {type(self.message).__name__}")
        if len(self.message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
            raise SchemaError(f"commit message is longer than {MAX_MESSAGE_BYTES} bytes")
        self._check_changes()

    def _check_changes(self) -> None:
        if not isinstance(self.changes, tuple):
            raise TypeError(f"Commit.changes must be a tuple, not {type(self.changes).__name__}")
        if not self.changes:
            return
        # a changeset says how to get from one parent's index to this one: with no parent
        # there is nothing to start from, with several it would favour one arbitrarily
        if len(self.parents) != 1:
            raise SchemaError(
                f"only a commit with one parent may list changes, this one has {len(self.parents)}"
            )
        if len(self.changes) > MAX_CHANGE_PARTS:
            raise SchemaError(
                f"commit lists {len(self.changes)} changeset parts, at most {MAX_CHANGE_PARTS}"
            )
        if len(set(self.changes)) != len(self.changes):
            raise SchemaError("commit lists the same changeset part twice")
        for part in self.changes:
            if not isinstance(part, CID) or part.codec != DAG_CBOR:
                raise SchemaError(f"commit changes must link dag-cbor blocks, got {part!r}")

    @classmethod
    def from_dag(cls, value: Value) -> Commit:
        expect_type(value, "commit", COMMIT_TYPE)
        fields = expect_fields(value, "commit", _FIELDS, _OPTIONAL)
        changes: tuple[CID, ...] = ()
        if "changes" in fields:
            listed = get_list(fields["changes"], "commit changes")
            if not listed:
                # one encoding per commit: no changes is written as no field
                raise SchemaError("commit changes, when present, must list at least one part")
            changes = tuple(get_cid(c, "commit changes part", dag_cbor=True) for c in listed)
        return cls(
            parents=tuple(
                get_cid(p, "commit parent", dag_cbor=True)
                for p in get_list(fields["parents"], "commit parents")
            ),
            index=get_cid(fields["index"], "commit index"),
            height=get_int(fields["height"], "commit height", minimum=1),
            time=get_int(fields["time"], "commit time"),
            expires=get_int(fields["expires"], "commit expires"),
            root=get_cid(fields["root"], "commit root", dag_cbor=True),
            message=get_str(fields["message"], "commit message"),
            changes=changes,
        )

    def to_dag(self) -> dict[str, Value]:
        value: dict[str, Value] = {
            "type": COMMIT_TYPE,
            "parents": list(self.parents),
            "index": self.index,
            "height": self.height,
            "time": self.time,
            "expires": self.expires,
            "root": self.root,
            "message": self.message,
        }
        if self.changes:
            value["changes"] = list(self.changes)
        return value


@dataclass(frozen=True, kw_only=True)
class SignedCommit(Signed[Commit]):
    """A commit with its signatures; ``commit_id`` is its identity, ``cid`` its envelope.

    ``roots`` (unsigned, in the envelope only) lists the envelope CIDs of the
    trust-root chain, version 1 first, up to the root the commit is signed
    under: commits link only root IDs, so this is how a follower that pinned a
    maintainer key finds the signed roots. Each root is verified on its own by
    the follower; the list changes the envelope CID, never the commit ID.
    """

    ENVELOPE_OPTIONAL: ClassVar[frozenset[str]] = frozenset({"roots"})

    roots: tuple[CID, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.roots, tuple):
            raise TypeError(f"SignedCommit.roots must be a tuple, not {type(self.roots).__name__}")
        _check_roots(self.roots)

    def __hash__(self) -> int:
        return hash(self.cid)

    @classmethod
    def _extra_to_dag(cls, extra: Mapping[str, Any]) -> dict[str, Value]:
        unknown = sorted(set(extra) - {"roots"})
        if unknown:
            raise TypeError(f"SignedCommit has no envelope fields {', '.join(unknown)}")
        roots = tuple(extra.get("roots", ()))
        _check_roots(roots)
        # one encoding per envelope: no roots is written as no field
        return {"roots": list(roots)} if roots else {}

    @classmethod
    def _extra_from_dag(cls, fields: Mapping[str, Value]) -> dict[str, Any]:
        if "roots" not in fields:
            return {}
        listed = get_list(fields["roots"], "commit envelope roots")
        if not listed:
            raise SchemaError("commit envelope roots, when present, must list at least one root")
        roots = tuple(get_cid(r, "commit envelope root", dag_cbor=True) for r in listed)
        _check_roots(roots)
        return {"roots": roots}

    def _extra(self) -> dict[str, Any]:
        return {"roots": self.roots}

    def with_roots(self, roots: Sequence[CID]) -> SignedCommit:
        """The same commit and signatures with ``roots`` in the envelope (a new envelope CID)."""
        return self._assemble(
            self.payload,
            self.payload_id,
            self.payload_block,
            self.signatures,
            {"roots": tuple(roots)},
        )

    @classmethod
    def payload_from_dag(cls, value: Value) -> Commit:
        return Commit.from_dag(value)

    @classmethod
    def domain(cls) -> bytes:
        return COMMIT_DOMAIN

    @property
    def commit(self) -> Commit:
        return self.payload

    @property
    def commit_id(self) -> CID:
        return self.payload_id

    @property
    def height(self) -> int:
        return self.payload.height


def _check_roots(roots: tuple[CID, ...]) -> None:
    check_root_links(roots, "commit envelope")


def make_commit(
    *,
    index: CID,
    root: SignedRoot | CID,
    time: int,
    parents: Sequence[SignedCommit] = (),
    expires: int | None = None,
    message: str = "",
    changes: Sequence[CID] = (),
) -> Commit:
    """A commit on top of ``parents`` (first parent first); height is one above the highest.

    ``root`` is the trust root the commit is signed under (its root ID, or the
    signed root). ``expires`` defaults to ``time + DEFAULT_COMMIT_LIFETIME``.
    ``changes``: the changeset parts from the single parent's index to ``index``.
    """
    height = 1 + max((p.height for p in parents), default=0)
    return Commit(
        parents=tuple(p.commit_id for p in parents),
        index=index,
        height=height,
        time=time,
        expires=time + DEFAULT_COMMIT_LIFETIME if expires is None else expires,
        root=root.root_id if isinstance(root, SignedRoot) else root,
        message=message,
        changes=tuple(changes),
    )


def sign_commit(
    commit: Commit | SignedCommit, *keys: SigningKey, roots: Sequence[CID] | None = None
) -> SignedCommit:
    """``commit`` signed (or co-signed) by each of ``keys``; the commit ID never changes.

    ``roots``: the trust-root envelope CIDs (version 1 first) to list in the
    envelope; ``None`` keeps what a signed commit already lists (none for a new one).
    """
    if isinstance(commit, SignedCommit):
        signed = commit if roots is None else commit.with_roots(roots)
    else:
        signed = SignedCommit.create(commit, roots=tuple(roots or ()))
    for key in keys:
        signed = signed.with_signature(key)
    return signed


def put_commit(store: BlockStore, signed: SignedCommit) -> CID:
    """Store the envelope and payload blocks; returns the envelope CID (what IPNS points to)."""
    return put_signed(store, signed)


def load_commit(store: BlockStore, cid: CID) -> SignedCommit:
    """Load a signed commit by its envelope CID (signatures not yet checked)."""
    envelope, payload = load_signed_blocks(store, cid, optional=SignedCommit.ENVELOPE_OPTIONAL)
    return SignedCommit.from_blocks(envelope, payload, cid=cid)


def load_commit_payload(store: BlockStore, commit_id: CID) -> Commit:
    """The commit with ID ``commit_id``, without signatures (for walking history)."""
    return Commit.from_dag(get_value(store, commit_id))


def iter_history(
    store: BlockStore, commit_id: CID, *, limit: int | None = None
) -> Iterator[tuple[CID, Commit]]:
    """Commits from ``commit_id`` back along first parents, newest first (``index log``)."""
    current: CID | None = commit_id
    count = 0
    while current is not None and (limit is None or count < limit):
        commit = load_commit_payload(store, current)
        yield current, commit
        count += 1
        current = commit.parents[0] if commit.parents else None
