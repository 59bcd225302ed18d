"""Shared fixed keys and builders for the trust tests (deterministic: seeds, fixed times)."""

from __future__ import annotations

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import SignedCommit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root

A, B, C, D, E = (SigningKey.from_seed(bytes([i]) * 32) for i in range(5))
T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400
FAR = T0 + 365 * DAY
INDEX: CID = dagcbor.encode_block({})[0]


def index(n: int) -> CID:
    return dagcbor.encode_block({"n": n})[0]


def root_v1(*signers: SigningKey, expires: int = FAR) -> SignedRoot:
    """Maintainers A, B, C with threshold 2."""
    root = make_root(
        expires=expires,
        maintainers=[A.public_key, B.public_key, C.public_key],
        maintainers_threshold=2,
    )
    return sign_root(root, *(signers or (A, B)))


def commit_on(
    root: SignedRoot,
    *signers: SigningKey,
    parents: tuple[SignedCommit, ...] = (),
    time: int = T0,
    expires: int | None = None,
    message: str = "",
    n: int = 0,
    store: MemoryBlockStore | None = None,
) -> SignedCommit:
    # a month of validity, so tests verifying at T0 + 10 days see live commits
    lifetime = time + 30 * DAY if expires is None else expires
    commit = make_commit(
        index=index(n), root=root, time=time, parents=parents, expires=lifetime, message=message
    )
    signed = sign_commit(commit, *(signers or (A, B)))
    if store is not None:
        put_commit(store, signed)
    return signed


def chain_of(root: SignedRoot, length: int, store: MemoryBlockStore) -> list[SignedCommit]:
    """``length`` commits on one line, each a day after the last, all stored."""
    put_root(store, root)
    commits: list[SignedCommit] = []
    for i in range(length):
        parents = (commits[-1],) if commits else ()
        commits.append(commit_on(root, parents=parents, time=T0 + i * DAY, n=i, store=store))
    return commits
