"""Index commits: git-style, signed by a threshold of the maintainers.

A commit is the payload of a signed envelope (``ipfsbin.trust.signing``).
Its identity, the *commit ID*, is the CID of the payload block: parents link
commit IDs, so adding a co-signature (which makes a new envelope) never forks
history. IPNS points to the envelope. The wire format is in ``schema/trust.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ipfsbin.codec.cid import CID
from ipfsbin.codec.dagcbor import Value
from ipfsbin.errors import SchemaError
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust._fields import (
    MAX_INT,
    expect_fields,
    expect_type,
    get_cid,
    get_int,
    get_list,
    get_str,
)
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot
from ipfsbin.trust.signing import Payload, Signed, load_signed_blocks, put_signed

__all__ = [
    "COMMIT_DOMAIN",
    "COMMIT_TYPE",
    "DEFAULT_COMMIT_LIFETIME",
    "MAX_MESSAGE_BYTES",
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

_FIELDS = frozenset({"type", "parents", "index", "height", "time", "expires", "root", "message"})


@dataclass(frozen=True, kw_only=True)
class Commit(Payload):
    """The signed part of a commit. Times are Unix seconds (UTC); the first commit has height 1."""

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

    @classmethod
    def from_dag(cls, value: Value) -> Commit:
        expect_type(value, "commit", COMMIT_TYPE)
        fields = expect_fields(value, "commit", _FIELDS)
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
        )

    def to_dag(self) -> dict[str, Value]:
        return {
            "type": COMMIT_TYPE,
            "parents": list(self.parents),
            "index": self.index,
            "height": self.height,
            "time": self.time,
            "expires": self.expires,
            "root": self.root,
            "message": self.message,
        }


class SignedCommit(Signed[Commit]):
    """A commit with its signatures; ``commit_id`` is its identity, ``cid`` its envelope."""

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


def make_commit(
    *,
    index: CID,
    root: SignedRoot | CID,
    time: int,
    parents: Sequence[SignedCommit] = (),
    expires: int | None = None,
    message: str = "",
) -> Commit:
    """A commit on top of ``parents`` (first parent first); height is one above the highest.

    ``root`` is the trust root the commit is signed under (its root ID, or the
    signed root). ``expires`` defaults to ``time + DEFAULT_COMMIT_LIFETIME``.
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
    )


def sign_commit(commit: Commit | SignedCommit, *keys: SigningKey) -> SignedCommit:
    """``commit`` signed (or co-signed) by each of ``keys``; the commit ID never changes."""
    signed = commit if isinstance(commit, SignedCommit) else SignedCommit.create(commit)
    for key in keys:
        signed = signed.with_signature(key)
    return signed


def put_commit(store: BlockStore, signed: SignedCommit) -> CID:
    """Store the envelope and payload blocks; returns the envelope CID (what IPNS points to)."""
    return put_signed(store, signed)


def load_commit(store: BlockStore, cid: CID) -> SignedCommit:
    """Load a signed commit by its envelope CID (signatures not yet checked)."""
    envelope, payload = load_signed_blocks(store, cid)
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
